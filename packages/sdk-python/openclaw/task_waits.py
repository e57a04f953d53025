"""Waiting for async tasks to end, across reconnections (:meth:`GatewayClient.wait_for_task`)."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

from .errors import GatewayError
from .events import ClientEventSink
from .types import TaskOutcome, TaskProgressEvent, TaskStatusEvent

#: The statuses a task ends in.
TERMINAL_STATES = frozenset({"completed", "failed", "canceled", "rejected"})
#: The cursor before every event of a task's stream: subscribing after it replays everything kept.
FIRST_CURSOR = "0-0"

#: Subscribes the connection to a task's events after a cursor (``task.subscribe``).
Subscribe = Callable[[str], Awaitable[Any]]


class _TaskWait:
    """One wait: the last event cursor it saw, and how it ends."""

    def __init__(
        self,
        task_id: str,
        subscribe: Subscribe,
        events: ClientEventSink,
        on_progress: Callable[[Any], Any] | None,
        on_status: Callable[[TaskStatusEvent], Any] | None,
    ) -> None:
        self.task_id = task_id
        self._subscribe = subscribe
        self._events = events
        self._on_progress = on_progress
        self._on_status = on_status
        self._cursor = FIRST_CURSOR
        self.outcome: asyncio.Future[TaskOutcome] = asyncio.get_running_loop().create_future()

    def on_status(self, event: TaskStatusEvent) -> None:
        if self.outcome.done() or self._seen(event.get("cursor")):
            return
        if self._on_status is not None:
            self._events.invoke(self._on_status, event)
        if event["status"] not in TERMINAL_STATES:
            return
        outcome = TaskOutcome(taskId=self.task_id, status=event["status"])  # type: ignore[typeddict-item]
        if "output" in event:
            outcome["output"] = event["output"]
        if "error" in event:
            outcome["error"] = event["error"]
        self.outcome.set_result(outcome)

    def on_progress(self, event: TaskProgressEvent) -> None:
        # Progress with a request id belongs to a sync call, not to a subscription.
        if self.outcome.done() or "id" in event or self._seen(event.get("cursor")):
            return
        if self._on_progress is not None:
            self._events.invoke(self._on_progress, event["progress"])

    def resubscribe(self) -> None:
        """Subscribes (again) after the last event seen: at once, and after every reconnection."""
        self._events.spawn(self._subscribe_after_cursor())

    async def _subscribe_after_cursor(self) -> None:
        try:
            await self._subscribe(self._cursor)
        except GatewayError as error:
            if self.outcome.done():
                return
            if not error.retryable:
                # NOT_FOUND (or a refusal no retry can fix) ends the wait.
                self.outcome.set_exception(error)
            elif error.code != "UNAVAILABLE":
                # A passing fault (RATE_LIMITED, ...): reported; the next connection subscribes again.
                self._events.report_error(error)
            # Not connected now: the next connection subscribes again.

    def _seen(self, cursor: str | None) -> bool:
        """Whether an event with this cursor was already seen (events without a cursor never are)."""
        if cursor is None:
            return False
        if not _cursor_after(cursor, self._cursor):
            return True
        self._cursor = cursor
        return False


class TaskWaits:
    """The task waits of one client, by task id: each task event goes to the waits of its task only."""

    def __init__(self, events: ClientEventSink) -> None:
        self._events = events
        self._by_task: dict[str, list[_TaskWait]] = {}

    async def wait(
        self,
        task_id: str,
        subscribe: Subscribe,
        on_progress: Callable[[Any], Any] | None = None,
        on_status: Callable[[TaskStatusEvent], Any] | None = None,
    ) -> TaskOutcome:
        """Returns how task ``task_id`` ended (see :meth:`GatewayClient.wait_for_task`)."""
        wait = _TaskWait(task_id, subscribe, self._events, on_progress, on_status)
        self._by_task.setdefault(task_id, []).append(wait)
        try:
            wait.resubscribe()
            return await wait.outcome
        finally:
            waits = self._by_task.get(task_id, [])
            waits.remove(wait)
            if not waits:
                self._by_task.pop(task_id, None)

    def on_status(self, event: TaskStatusEvent) -> None:
        for wait in list(self._by_task.get(event["taskId"], [])):
            wait.on_status(event)

    def on_progress(self, event: TaskProgressEvent) -> None:
        for wait in list(self._by_task.get(event["taskId"], [])):
            wait.on_progress(event)

    def on_connected(self) -> None:
        """The client reconnected: every wait subscribes again after the last event it saw."""
        for waits in self._by_task.values():
            for wait in waits:
                wait.resubscribe()

    def close(self) -> None:
        """The client closed for good: every wait ends with ``UNAVAILABLE`` rather than wait forever."""
        for waits in self._by_task.values():
            for wait in waits:
                if not wait.outcome.done():
                    wait.outcome.set_exception(
                        GatewayError(
                            "UNAVAILABLE", f"the client closed while waiting for task {wait.task_id}", retryable=False
                        )
                    )


def _cursor_after(a: str, b: str) -> bool:
    """Whether event cursor (a Redis stream id, ``<ms>-<seq>``) ``a`` comes after ``b``."""
    return _cursor_key(a) > _cursor_key(b)


def _cursor_key(cursor: str) -> tuple[int, int]:
    millis, _, sequence = cursor.partition("-")
    try:
        return int(millis or 0), int(sequence or 0)
    except ValueError:
        return 0, 0
