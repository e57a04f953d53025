"""The requests of one client that wait for their response, by id."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from .errors import GatewayError

#: Called with each ``task.progress`` value the gateway forwards for a ``coordinator`` call in flight.
ProgressListener = Callable[[Any], Any]


@dataclass
class _PendingRequest:
    action: str
    future: asyncio.Future[Any]
    timer: asyncio.TimerHandle
    on_progress: ProgressListener | None
    #: Learned from the first ``task.progress`` of a ``coordinator`` call.
    task_id: str | None = field(default=None)


class PendingRequests:
    """Requests waiting for a response. Each ends exactly once: with its response, at its local deadline,
    when its caller stops waiting, or when the connection it was sent on closes."""

    def __init__(self) -> None:
        self._entries: dict[int, _PendingRequest] = {}
        self._last_id = 0

    def next_id(self) -> int:
        """A fresh id. Ids grow for the client's whole life, so a late response never matches a newer request."""
        self._last_id += 1
        return self._last_id

    def track(
        self,
        request_id: int,
        action: str,
        timeout: float,
        on_progress: ProgressListener | None = None,
    ) -> asyncio.Future[Any]:
        """Tracks request ``request_id``; the future settles exactly once, with ``TIMEOUT`` after ``timeout`` s."""
        loop = asyncio.get_running_loop()
        timed_out = GatewayError("TIMEOUT", f"no response to '{action}' within {timeout:g} s", retryable=True)
        timer = loop.call_later(timeout, self.reject, request_id, timed_out)
        future: asyncio.Future[Any] = loop.create_future()
        self._entries[request_id] = _PendingRequest(action, future, timer, on_progress)
        return future

    def resolve(self, request_id: int, result: Any) -> bool:
        """Resolves request ``request_id``; False if it is not pending."""
        entry = self.take(request_id)
        if entry is None:
            return False
        if not entry.future.done():
            entry.future.set_result(result)
        return True

    def reject(self, request_id: int, error: BaseException) -> bool:
        """Fails request ``request_id``; False if it is not pending."""
        entry = self.take(request_id)
        if entry is None:
            return False
        if not entry.future.done():
            entry.future.set_exception(error)
        return True

    def reject_all(self, error_for: Callable[[str], BaseException]) -> None:
        """Fails every pending request (the connection closed), each with the error for its action."""
        for request_id in list(self._entries):
            entry = self._entries.get(request_id)
            if entry is not None:
                self.reject(request_id, error_for(entry.action))

    def take(self, request_id: int) -> _PendingRequest | None:
        """Stops tracking request ``request_id`` and returns it, if it was pending."""
        entry = self._entries.pop(request_id, None)
        if entry is not None:
            entry.timer.cancel()
        return entry

    def progress_listener(self, request_id: int, task_id: str) -> ProgressListener | None:
        """Tells pending request ``request_id`` its task id; returns its progress listener, if any.

        The caller invokes the listener, so a listener that raises cannot corrupt this table.
        """
        entry = self._entries.get(request_id)
        if entry is None:
            return None
        entry.task_id = task_id
        return entry.on_progress

    def is_settled(self, request_id: int) -> bool:
        """Whether ``request_id`` is one this client sent that is no longer pending (a late response)."""
        return 0 < request_id <= self._last_id and request_id not in self._entries
