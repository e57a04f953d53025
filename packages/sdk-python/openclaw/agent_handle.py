"""One agent served by a client: its task handlers and its registration (:class:`AgentHandle`)."""

from __future__ import annotations

import asyncio
import inspect
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, TypedDict

from .errors import GatewayError
from .events import ClientEventSink
from .shared_state import MemoryClient
from .task_request import Caller, TaskRequest
from .types import RegisterResult

#: Runs one task: returns the output (sent as ``task.result``) or raises (sent as ``task.error``).
#: A coroutine function or a plain function; a plain one runs on the event loop, so keep it quick.
TaskHandler = Callable[[TaskRequest], Any]

#: The wildcard task name: its handler runs the tasks no other handler takes.
WILDCARD = "*"
#: The protocol's limits on an agent error's message and code.
MAX_ERROR_MESSAGE = 4096
MAX_ERROR_CODE = 64


class CachePolicy(TypedDict):
    """Tasks whose outputs the gateway may cache (``"*"``: all), for ``ttlMs`` milliseconds."""

    tasks: list[str]
    ttlMs: int


@dataclass(frozen=True)
class AgentOptions:
    """What ``register`` tells the gateway about an agent (see :meth:`GatewayClient.agent`)."""

    #: Tasks this instance takes at once; the gateway enforces it, and so does the SDK. ``None``: 1.
    concurrency: int | None = None
    #: Task names to advertise. ``None``: the names of the handlers at ``register()`` (not the wildcard).
    tasks: list[str] | None = None
    #: Free metadata, stored with the instance in the cluster registry.
    meta: dict[str, Any] | None = None
    #: Cacheable tasks: identical calls are then answered from the gateway's cache without reaching the agent.
    cache: CachePolicy | None = None

    def __post_init__(self) -> None:
        if self.concurrency is not None and not (isinstance(self.concurrency, int) and 1 <= self.concurrency <= 10_000):
            raise ValueError(f"concurrency: expected an integer from 1 to 10000 (got {self.concurrency!r})")


@dataclass(frozen=True)
class AgentTransport:
    """What an :class:`AgentHandle` needs from the client that made it."""

    request: Callable[[str, dict[str, Any]], Awaitable[Any]]
    #: Sends a frame that gets no response; False without a connection; raises when it cannot be serialised.
    send_reply: Callable[[dict[str, Any]], bool]
    call: Caller
    memory: MemoryClient
    events: ClientEventSink


@dataclass(eq=False)
class _RunningTask:
    request: TaskRequest
    task: asyncio.Task[dict[str, Any]] | None = None
    deadline_timer: asyncio.TimerHandle | None = None
    #: Set when the connection the task came on is gone: its reply must not go out on the next one.
    orphaned: bool = field(default=False)


class AgentHandle:
    """An agent served by this client, made by :meth:`GatewayClient.agent`.

    Add handlers with :meth:`handle`, then ``await agent.register()`` (or ``await client.serve()``). From then
    on the client registers the agent again after every reconnection. Every task gets exactly one reply:
    the handler's return value (``task.result``), or what it raised (``task.error``): a
    :class:`GatewayError` keeps its code, message and ``retryable``; any other exception sends its message.
    A task the agent has no handler for is answered ``NOT_FOUND``. On ``task.cancel``, at the deadline, or
    when the connection is lost, ``request.cancelled`` is set and the handler's asyncio task is cancelled;
    its reply then says why (``CANCELED``, ``TIMEOUT``), and after a lost connection it sends none.

    Example::

        agent = client.agent("my-agent", concurrency=4)

        @agent.handle("process-data")
        async def process_data(request):
            return await process(request.data)

        await agent.register()
    """

    def __init__(self, name: str, options: AgentOptions, transport: AgentTransport) -> None:
        self.name = name
        self._options = options
        self._transport = transport
        self._handlers: dict[str, TaskHandler] = {}
        self._running: dict[str, _RunningTask] = {}
        #: Every handler task not yet ended, including those of a lost connection.
        self._tasks: set[asyncio.Task[dict[str, Any]]] = set()
        self._slots = asyncio.Semaphore(options.concurrency or 1)
        self._registration: RegisterResult | None = None
        #: Set once a register() succeeded: the client registers the agent again after reconnecting.
        self.wants_registration = False

    def handle(self, task: str, handler: TaskHandler | None = None) -> Any:
        """Sets the handler of task ``task`` (``"*"``: any task without its own). Use as a decorator,
        ``@agent.handle("summarize")``, or call it with the handler. One handler per task name."""
        if not isinstance(task, str) or not task:
            raise ValueError("task: expected a non-empty task name")

        def add(function: TaskHandler) -> TaskHandler:
            if task in self._handlers:
                raise ValueError(f"agent '{self.name}' already has a handler for task '{task}'")
            self._handlers[task] = function
            return function

        return add if handler is None else add(handler)

    async def register(self) -> RegisterResult:
        """Registers this connection as an instance of the agent (``register``); again to advertise handlers
        added since. Raises the gateway's refusal as a :class:`GatewayError`."""
        result = await self._transport.request("register", self._register_params())
        if not (isinstance(result, dict) and isinstance(result.get("instanceId"), str)):
            raise GatewayError("INTERNAL", "the gateway sent a malformed 'register' result", retryable=False)
        self._registration = result  # type: ignore[assignment]
        self.wants_registration = True
        return result  # type: ignore[return-value]

    @property
    def registered(self) -> bool:
        """Whether the agent is registered on the current connection."""
        return self._registration is not None

    @property
    def instance_id(self) -> str | None:
        """The instance id the gateway gave this registration, while registered."""
        return self._registration["instanceId"] if self._registration else None

    @property
    def in_flight(self) -> int:
        """Tasks this instance holds now (running, or waiting for a concurrency slot)."""
        return len(self._running)

    def matches(self, task: str) -> int:
        """How well this agent matches a task name: 2 its own handler, 1 the wildcard, 0 none."""
        if task in self._handlers:
            return 2
        return 1 if WILDCARD in self._handlers else 0

    def run(self, event: dict[str, Any]) -> None:
        """Runs a dispatched task and sends exactly one reply for it."""
        task_id = event["taskId"]
        # A second delivery of a task still running here (same connection) is answered by the first run.
        if task_id in self._running:
            return
        handler = self._handlers.get(event["task"]) or self._handlers.get(WILDCARD)
        if handler is None:
            self._reply(
                {
                    "action": "task.error",
                    "taskId": task_id,
                    "error": {
                        "code": "NOT_FOUND",
                        "message": f"agent '{self.name}' has no handler for task '{event['task']}'",
                        "retryable": False,
                    },
                }
            )
            return
        entry = _RunningTask(
            TaskRequest(
                event,
                self.name,
                self._transport.memory,
                self._transport.call,
                lambda value: self._progress(entry, value),
            )
        )
        loop = asyncio.get_running_loop()
        self._running[task_id] = entry
        entry.task = loop.create_task(self._execute(handler, entry.request))
        self._tasks.add(entry.task)
        entry.task.add_done_callback(self._tasks.discard)
        entry.task.add_done_callback(lambda task: self._on_done(entry, task))
        entry.deadline_timer = loop.call_later(
            max(0.0, event["deadline"] / 1000 - time.time()), self._on_deadline, entry
        )

    def cancel(self, task_id: str) -> bool:
        """Cancels task ``task_id`` for ``task.cancel``; False if it is not running here."""
        entry = self._running.get(task_id)
        if entry is None:
            return False
        self._abort(entry, GatewayError("CANCELED", f"task {task_id} was canceled by the caller"))
        return True

    def detach(self, reason: GatewayError) -> None:
        """The connection is gone: cancels every running task and drops its eventual reply, which would
        otherwise reach the gateway on the next connection, from an instance that never received the task."""
        self._registration = None
        for entry in self._running.values():
            entry.orphaned = True
            self._abort(entry, reason)
        self._running.clear()

    async def reregister(self) -> None:
        """Registers again after a reconnection, with the same options and the current handlers."""
        try:
            await self.register()
        except GatewayError as error:
            # A refusal that retrying cannot fix (e.g. the credentials lost the permission) stops re-registering.
            if not error.retryable:
                self.wants_registration = False
            raise

    async def wait_stopped(self, timeout: float) -> None:
        """Waits (at most ``timeout`` seconds) for the handler tasks to end, e.g. after they were cancelled."""
        if self._tasks:
            await asyncio.wait(list(self._tasks), timeout=timeout)

    def _register_params(self) -> dict[str, Any]:
        options = self._options
        tasks = options.tasks if options.tasks is not None else [t for t in self._handlers if t != WILDCARD]
        params: dict[str, Any] = {"name": self.name}
        if tasks:
            params["tasks"] = list(tasks)
        if options.concurrency is not None:
            params["concurrency"] = options.concurrency
        if options.meta is not None:
            params["meta"] = options.meta
        if options.cache is not None:
            params["cache"] = options.cache
        return params

    def _on_deadline(self, entry: _RunningTask) -> None:
        # The error is made only for the tasks that do pass their deadline, not for every task.
        self._abort(entry, GatewayError("TIMEOUT", f"task {entry.request.task_id} passed its deadline"))

    def _abort(self, entry: _RunningTask, reason: GatewayError) -> None:
        if entry.deadline_timer is not None:
            entry.deadline_timer.cancel()
        if entry.request._mark_cancelled(reason) and entry.task is not None:
            entry.task.cancel()

    async def _execute(self, handler: TaskHandler, request: TaskRequest) -> dict[str, Any]:
        """Runs the handler (once a concurrency slot is free) and returns its reply."""
        try:
            async with self._slots:
                output = handler(request)
                if inspect.isawaitable(output):
                    output = await output
        except asyncio.CancelledError:
            if request.cancel_reason is None:
                raise  # cancelled from outside (the event loop shutting down): _on_done still replies
            return _error_reply(request, request.cancel_reason)
        except Exception as error:  # whatever a handler raises becomes its task.error
            # A handler that gave up because it was cancelled reports why it was, not its own error.
            return _error_reply(request, request.cancel_reason or error)
        return {"action": "task.result", "taskId": request.task_id, "output": output}

    def _on_done(self, entry: _RunningTask, task: asyncio.Task[dict[str, Any]]) -> None:
        """Sends the reply of a handler task that ended, however it ended: a task cancelled before its
        first step never ran the code of ``_execute`` at all."""
        request = entry.request
        if task.cancelled():
            reply = _error_reply(
                request, request.cancel_reason or GatewayError("CANCELED", "the handler was cancelled")
            )
        elif task.exception() is not None:
            reply = _error_reply(request, task.exception())  # type: ignore[arg-type]
        else:
            reply = task.result()
        self._finish(entry, reply)

    def _finish(self, entry: _RunningTask, reply: dict[str, Any]) -> None:
        if entry.deadline_timer is not None:
            entry.deadline_timer.cancel()
        task_id = entry.request.task_id
        if self._running.get(task_id) is entry:
            del self._running[task_id]
        if not entry.orphaned:
            self._reply(reply)

    def _progress(self, entry: _RunningTask, value: Any) -> None:
        task_id = entry.request.task_id
        if entry.orphaned or self._running.get(task_id) is not entry:
            return
        self._reply({"action": "task.progress", "taskId": task_id, "progress": value})

    def _reply(self, frame: dict[str, Any]) -> None:
        """Sends a reply; one that cannot go out as it is (not JSON, too large) becomes a ``task.error``."""
        try:
            self._transport.send_reply(frame)
        except GatewayError as error:
            if frame["action"] == "task.progress":
                self._transport.events.report_error(error)
                return
            try:
                self._transport.send_reply(
                    {"action": "task.error", "taskId": frame["taskId"], "error": agent_error(error)}
                )
            except GatewayError as fallback_error:
                self._transport.events.report_error(fallback_error)


def _error_reply(request: TaskRequest, error: BaseException) -> dict[str, Any]:
    return {"action": "task.error", "taskId": request.task_id, "error": agent_error(error)}


def agent_error(error: BaseException) -> dict[str, Any]:
    """The ``error`` of a ``task.error`` for what a handler raised.

    A :class:`GatewayError` keeps its code, ``retryable`` and details; another exception sends its message,
    and a string ``code`` or boolean ``retryable`` attribute if it has one.
    """
    if isinstance(error, GatewayError):
        wire: dict[str, Any] = {
            "code": error.code,
            "message": error.message[:MAX_ERROR_MESSAGE],
            "retryable": error.retryable,
        }
        if error.details is not None:
            wire["details"] = error.details
        return wire
    wire = {"message": (str(error) or type(error).__name__)[:MAX_ERROR_MESSAGE]}
    code = getattr(error, "code", None)
    if isinstance(code, str) and 0 < len(code) <= MAX_ERROR_CODE:
        wire["code"] = code
    retryable = getattr(error, "retryable", None)
    if isinstance(retryable, bool):
        wire["retryable"] = retryable
    details = getattr(error, "details", None)
    if details is not None:
        wire["details"] = details
    return wire
