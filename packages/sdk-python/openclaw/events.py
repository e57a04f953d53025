"""The client's events (``client.on("task.status", callback)``) and the background work they start.

Events: ``connected``, ``disconnected``, ``reconnecting``, ``closed``, ``error``, ``call.retry``,
``task.status``, ``task.progress``, ``approval.required``, ``approval.requested``, ``approval.updated``.
A listener may be a plain function or a coroutine function (run as a task). A listener that raises is
reported to ``"error"`` listeners; with none, faults are logged to the ``openclaw`` logger, never raised
into the connection.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
from collections.abc import Awaitable, Callable, Coroutine
from dataclasses import dataclass
from typing import Any, Literal

from .errors import GatewayError
from .types import HelloResult

logger = logging.getLogger("openclaw")

EventName = Literal[
    "connected",
    "disconnected",
    "reconnecting",
    "closed",
    "error",
    "call.retry",
    "task.status",
    "task.progress",
    "approval.required",
    "approval.requested",
    "approval.updated",
]

Listener = Callable[..., Any]


@dataclass(frozen=True)
class ConnectedInfo:
    """``connected``: a connection is open and its handshake (hello, re-registration) is done."""

    #: The ``hello`` result of this connection (``None`` when ``hello`` is off).
    session: HelloResult | None
    #: Whether this is a reconnection (agents were registered again).
    reconnected: bool


@dataclass(frozen=True)
class DisconnectedInfo:
    """``disconnected``: an established connection closed."""

    #: The WebSocket close code (1006 when the connection was lost without a close frame).
    code: int
    reason: str
    #: Whether the client will now try to reconnect.
    will_reconnect: bool


@dataclass(frozen=True)
class ReconnectingInfo:
    """``reconnecting``: the client waits ``delay`` seconds, then makes attempt ``attempt`` (1-based)."""

    attempt: int
    delay: float
    #: Why the previous attempt failed; ``None`` before the first.
    last_error: BaseException | None


@dataclass(frozen=True)
class ClosedInfo:
    """``closed``: the client is done and will not connect again."""

    #: The close code of the last connection, if there was one.
    code: int | None
    reason: str


@dataclass(frozen=True)
class CallRetryInfo:
    """``call.retry``: a sync call that no agent received is sent again after ``delay`` seconds."""

    agent: str
    task: str
    #: The attempt about to be made (2 for the first retry).
    attempt: int
    delay: float
    #: Why the previous attempt failed (retryable, with ``dispatched`` False).
    error: GatewayError


class ClientEventSink:
    """The listeners of one client, and the background tasks its parts start.

    Every part of the client (connection, requests, agents, waits) emits through this sink: a listener
    that raises is reported instead of escaping into the socket's reader, and a coroutine started in the
    background is kept referenced until it ends, its failure reported.
    """

    def __init__(self) -> None:
        self._listeners: dict[str, list[Listener]] = {}
        self._tasks: set[asyncio.Task[Any]] = set()

    def on(self, event: str, listener: Listener) -> None:
        self._listeners.setdefault(event, []).append(listener)

    def off(self, event: str, listener: Listener) -> None:
        listeners = self._listeners.get(event, [])
        if listener in listeners:
            listeners.remove(listener)

    def listener_count(self, event: str) -> int:
        return len(self._listeners.get(event, []))

    def emit(self, event: str, payload: Any) -> None:
        """Calls every listener of ``event`` with ``payload``; never raises."""
        for listener in list(self._listeners.get(event, [])):
            self.invoke(listener, payload)

    def invoke(self, callback: Callable[..., Any], *args: Any) -> None:
        """Calls a user callback, sync or async; what it raises is reported, never raised."""
        try:
            outcome = callback(*args)
        except Exception as error:  # a user callback may raise anything
            self.report_error(error)
            return
        if inspect.isawaitable(outcome):
            self.spawn(_awaited(outcome))

    def report_error(self, error: BaseException) -> None:
        """Hands a fault that belongs to no request to ``"error"`` listeners, or logs it when there are none."""
        listeners = list(self._listeners.get("error", []))
        if not listeners:
            logger.warning("openclaw: %s", error, exc_info=not isinstance(error, GatewayError))
            return
        for listener in listeners:
            try:
                outcome = listener(error)
                if inspect.isawaitable(outcome):
                    self.spawn(_awaited(outcome), report=False)
            except Exception:  # an "error" listener that raises has nowhere left to report to
                logger.exception("openclaw: an 'error' listener raised")

    def spawn(self, coroutine: Coroutine[Any, Any, Any], *, report: bool = True) -> asyncio.Task[Any]:
        """Runs ``coroutine`` in the background, keeping it referenced until it ends."""
        task = asyncio.get_running_loop().create_task(coroutine)
        self._tasks.add(task)
        task.add_done_callback(lambda done: self._finished(done, report))
        return task

    async def stop_background(self, grace: float) -> None:
        """Waits up to ``grace`` seconds for the background tasks (but not the one calling) to end, e.g. an
        async ``closed`` listener, then cancels those still running and waits for them."""
        current = asyncio.current_task()
        tasks = [task for task in self._tasks if task is not current]
        if not tasks:
            return
        _, running = await asyncio.wait(tasks, timeout=grace)
        for task in running:
            task.cancel()
        if running:
            await asyncio.wait(running)

    def _finished(self, task: asyncio.Task[Any], report: bool) -> None:
        self._tasks.discard(task)
        if task.cancelled():
            return
        error = task.exception()
        if error is not None:
            if report:
                self.report_error(error)
            else:
                logger.error("openclaw: background task failed", exc_info=error)


async def _awaited(awaitable: Awaitable[Any]) -> Any:
    return await awaitable
