"""What an agent's handler receives: the task's data and its context (:class:`TaskRequest`)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import Any

from .errors import GatewayError
from .shared_state import MemoryClient, ThreadMemory
from .types import TaskOrigin

#: Makes a sync call to an agent; the client's ``call``.
Caller = Callable[..., Awaitable[Any]]


class TaskRequest:
    """One task dispatched to an agent, as its handler gets it.

    Example::

        @agent.handle("process-data")
        async def process_data(request):
            request.progress({"stage": "reading"})
            rows = await load(request.data["url"])
            summary = await request.call("summarizer", "summarize", {"rows": rows})
            return {"rows": len(rows), "summary": summary}

    Attributes:
        data: The caller's data (``None`` when it sent none).
        task: The task name, e.g. ``process-data``.
        task_id: The task's id, unique in the cluster.
        agent: The agent this task was sent to.
        sender: Who sent it, as the gateway says: ``{"principal": ..., "agent"?: ...}`` (and, for
            agent-to-agent or delegated calls, ``agents``, ``onBehalfOf``, ``chain``).
        attempt: 1 for the first delivery; higher when the gateway dispatches an async task again.
        deadline: When the caller stops waiting, in epoch milliseconds (see :attr:`time_remaining`).
        traceparent: W3C trace context of the dispatch, when the gateway traces; ``None`` otherwise.
        thread: The conversation's memory thread, when the call named one; ``None`` otherwise.
        memory: That thread's memory (``read``, ``append``), or ``None`` without a thread.
        cancelled: Set when the task is canceled (``CANCELED``), passes its deadline (``TIMEOUT``) or
            its connection is lost (``UNAVAILABLE``); :attr:`cancel_reason` says which. The handler's
            asyncio task is cancelled at the same moment.
        cancel_reason: Why :attr:`cancelled` was set, as a :class:`GatewayError`; ``None`` until then.
    """

    def __init__(
        self,
        event: dict[str, Any],
        agent: str,
        memory: MemoryClient,
        caller: Caller,
        report_progress: Callable[[Any], None],
    ) -> None:
        self.data: Any = event.get("data")
        self.task: str = event["task"]
        self.task_id: str = event["taskId"]
        self.agent = agent
        self.sender: TaskOrigin = event["from"]
        self.attempt: int = event["attempt"]
        self.deadline: int = event["deadline"]
        self.traceparent: str | None = event.get("traceparent")
        self.thread: str | None = event.get("thread")
        self.memory = ThreadMemory(memory, self.thread) if self.thread is not None else None
        self.cancelled = asyncio.Event()
        self.cancel_reason: GatewayError | None = None
        self._caller = caller
        self._report_progress = report_progress

    @property
    def time_remaining(self) -> float:
        """Seconds left until the deadline (negative once it has passed)."""
        return self.deadline / 1000 - time.time()

    def progress(self, value: Any) -> asyncio.Future[None]:
        """Reports intermediate progress to the caller (``task.progress``). Best effort: dropped while
        disconnected. Works called plainly or awaited (``await request.progress(...)``)."""
        self._report_progress(value)
        done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        done.set_result(None)
        return done

    async def call(self, agent: str, task: str, data: Any = None, **options: Any) -> Any:
        """Calls another agent on behalf of this task (see :meth:`GatewayClient.call`): the call carries
        this task as its parent, so the gateway follows the chain of agents, and this task's trace context."""
        options.setdefault("parent_task_id", self.task_id)
        if self.traceparent is not None:
            options.setdefault("traceparent", self.traceparent)
        return await self._caller(agent, task, data, **options)

    def _mark_cancelled(self, reason: GatewayError) -> bool:
        """Marks the task cancelled for ``reason`` (by its agent); False if it already was."""
        if self.cancel_reason is not None:
            return False
        self.cancel_reason = reason
        self.cancelled.set()
        return True

    def __repr__(self) -> str:
        return f"TaskRequest(task={self.task!r}, task_id={self.task_id!r}, agent={self.agent!r})"
