"""The agents one client serves: tasks go to the agent that handles them, cancellations to the agent
running the task, and after a reconnection every agent that had registered registers again."""

from __future__ import annotations

import asyncio
import re
from typing import Any

from .agent_handle import AgentHandle, AgentOptions, AgentTransport
from .errors import GatewayError, UnexpectedFrameError

#: Agent names the protocol allows.
AGENT_NAME = re.compile(r"^[a-z0-9][a-z0-9._-]{0,62}$")


class ServedAgents:
    def __init__(self, transport: AgentTransport) -> None:
        self._transport = transport
        self._handles: dict[str, AgentHandle] = {}

    def add(self, name: str, options: AgentOptions) -> AgentHandle:
        """A new agent. Raises ``ValueError`` for a name the protocol does not allow, or one already served."""
        if not isinstance(name, str) or not AGENT_NAME.match(name):
            raise ValueError(f"agent name {name!r}: expected ^[a-z0-9][a-z0-9._-]{{0,62}}$")
        if name in self._handles:
            raise ValueError(f"this client already has an agent named '{name}'")
        handle = AgentHandle(name, options, self._transport)
        self._handles[name] = handle
        return handle

    def all(self) -> list[AgentHandle]:
        return list(self._handles.values())

    def on_task(self, frame: dict[str, Any], text: str) -> None:
        """A ``task`` event: runs the task on the agent that handles it, or answers that none does."""
        if _is_task_event(frame):
            self._dispatch(frame)
            return
        self._transport.events.report_error(UnexpectedFrameError("the gateway sent a malformed task event", text))
        # Answer what can be answered, so the task fails now rather than at its deadline.
        task_id = frame.get("taskId")
        if isinstance(task_id, str) and task_id:
            self._try_reply(
                {
                    "action": "task.error",
                    "taskId": task_id,
                    "error": {
                        "code": "BAD_REQUEST",
                        "message": "the agent received a malformed task event",
                        "retryable": False,
                    },
                }
            )

    def on_cancel(self, frame: dict[str, Any], text: str) -> None:
        """A ``task.cancel`` event: cancels the task on the agent running it."""
        task_id = frame.get("taskId")
        if not isinstance(task_id, str):
            self._transport.events.report_error(
                UnexpectedFrameError("the gateway sent a malformed task.cancel event", text)
            )
            return
        for handle in self._handles.values():
            if handle.cancel(task_id):
                return

    def detach_all(self) -> None:
        """The connection is lost: running tasks are cancelled, and their replies will not go out on the next one."""
        lost = GatewayError("UNAVAILABLE", "the connection to the gateway was lost", retryable=True)
        for handle in self._handles.values():
            handle.detach(lost)

    async def reregister(self) -> None:
        """Registers again every agent that had registered; only refusals a retry can fix fail the reconnection."""
        handles = [handle for handle in self._handles.values() if handle.wants_registration]
        outcomes = await asyncio.gather(*(handle.reregister() for handle in handles), return_exceptions=True)
        retryable: BaseException | None = None
        for handle, outcome in zip(handles, outcomes, strict=True):
            if not isinstance(outcome, BaseException):
                continue
            if isinstance(outcome, GatewayError) and outcome.retryable:
                retryable = retryable or outcome
                continue
            self._transport.events.report_error(
                GatewayError(
                    outcome.code if isinstance(outcome, GatewayError) else "INTERNAL",
                    f"agent '{handle.name}' could not be registered again: {outcome}",
                    retryable=False,
                )
            )
        if retryable is not None:
            raise retryable

    async def wait_stopped(self, timeout: float) -> None:
        """Waits, at most ``timeout`` seconds, for every handler task to end."""
        await asyncio.gather(*(handle.wait_stopped(timeout) for handle in self._handles.values()))

    def _dispatch(self, event: dict[str, Any]) -> None:
        # Every agent is a candidate, registered or not yet: a task can arrive right behind the register
        # response, before the coroutine that awaited it has run.
        handles = list(self._handles.values())
        # The gateway names the agent asked; one connection may serve several with the same task names.
        named = [handle for handle in handles if handle.name == event.get("agent")]
        candidates = named or handles
        best = max(candidates, key=lambda handle: handle.matches(event["task"]), default=None)
        if best is not None and best.matches(event["task"]) == 0:
            # With a single agent, it answers an unknown task itself, in a message that names it.
            best = candidates[0] if len(candidates) == 1 else None
        if best is not None:
            best.run(event)
            return
        names = ", ".join(handle.name for handle in handles)
        self._try_reply(
            {
                "action": "task.error",
                "taskId": event["taskId"],
                "error": {
                    "code": "NOT_FOUND",
                    "message": f"no agent on this connection{f' ({names})' if names else ''} "
                    f"has a handler for task '{event['task']}'",
                    "retryable": False,
                },
            }
        )

    def _try_reply(self, frame: dict[str, Any]) -> None:
        try:
            self._transport.send_reply(frame)
        except GatewayError as error:
            self._transport.events.report_error(error)


def _is_task_event(frame: dict[str, Any]) -> bool:
    """Whether a ``task`` event has every field the protocol requires, of the right type."""
    origin = frame.get("from")
    return (
        isinstance(frame.get("taskId"), str)
        and bool(frame["taskId"])
        and isinstance(frame.get("task"), str)
        and isinstance(origin, dict)
        and isinstance(origin.get("principal"), str)
        and _is_int(frame.get("deadline"))
        and _is_int(frame.get("attempt"))
        and frame["attempt"] >= 1
        and all(isinstance(frame.get(name, ""), str) for name in ("agent", "traceparent", "thread"))
    )


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)
