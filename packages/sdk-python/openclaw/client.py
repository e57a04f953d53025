"""The client: one connection to a gateway for calling agents, serving agents and following tasks."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from typing import Any

from .agent_handle import AgentHandle, AgentOptions, AgentTransport, CachePolicy
from .connection import GatewayConnection
from .errors import GatewayError, UnexpectedFrameError
from .events import CallRetryInfo, ClientEventSink, EventName, Listener
from .operations import GatewayOperations
from .options import (
    DEFAULT_CLIENT_NAME,
    DEFAULT_CONNECT_TIMEOUT,
    DEFAULT_REQUEST_TIMEOUT,
    ClientOptions,
    ReconnectOptions,
)
from .pending_requests import ProgressListener
from .request_channel import RequestChannel, is_drain_close
from .served_agents import ServedAgents
from .shared_state import MemoryClient, StateClient
from .task_waits import TaskWaits
from .types import (
    ConnectionState,
    EscalationPolicy,
    HelloResult,
    RetryPolicy,
    SubmitResult,
    TaskOutcome,
    TaskProgressEvent,
    TaskStatusEvent,
)

#: How much longer than the gateway's deadline a sync call waits locally, in seconds. The gateway holds
#: the real deadline and answers ``TIMEOUT`` itself; the margin covers the trip back.
CALL_GRACE = 5.0
#: The protocol's default deadline of a ``coordinator`` call, in seconds.
DEFAULT_CALL_TIMEOUT = 30.0
#: How long ``close()`` waits for cancelled handlers, then for background work (async listeners), in seconds.
STOP_GRACE = 1.0
#: The task states of the protocol, for checking ``task.status`` events.
_TASK_STATES = frozenset({"submitted", "working", "input-required", "completed", "failed", "canceled", "rejected"})


class GatewayClient(GatewayOperations):
    """A connection to an OpenClaw gateway. Usually made with :func:`openclaw.connect`.

    Requests made while the client is not connected fail at once with ``UNAVAILABLE`` (retryable); they
    are not queued. Every request ends: with its response, at its local deadline (``TIMEOUT``), or when
    the connection drops (``UNAVAILABLE``).

    Reconnection: after an unexpected close (any code but 1008, or a lost connection) the client reconnects
    with exponential backoff and full jitter, sends ``hello`` again and registers every agent again. It
    backs off harder after 1013 (overloaded) and after a refused upgrade that says when to come back. It
    never reconnects after 1008 (credentials revoked), after the gateway refuses its credentials, or after
    :meth:`close`.

    Example::

        async with await openclaw.connect("ws://127.0.0.1:18789", api_key=key) as client:
            client.on("reconnecting", lambda info: log.warning("reconnecting in %.1f s", info.delay))
            output = await client.call("summarizer", "summarize", {"text": "hello"})
    """

    def __init__(
        self,
        url: str,
        *,
        api_key: str | None = None,
        token: str | None = None,
        reconnect: bool | ReconnectOptions = True,
        request_timeout: float = DEFAULT_REQUEST_TIMEOUT,
        connect_timeout: float = DEFAULT_CONNECT_TIMEOUT,
        client_name: str = DEFAULT_CLIENT_NAME,
        hello: bool = True,
    ) -> None:
        options = ClientOptions.build(
            url,
            reconnect=reconnect,
            api_key=api_key,
            token=token,
            request_timeout=request_timeout,
            connect_timeout=connect_timeout,
            client_name=client_name,
            hello=hello,
        )
        self._events = ClientEventSink()
        self._connection = GatewayConnection(options, _ConnectionHooks(self), self._events)
        self._requests = RequestChannel(self._connection, self._events, options.request_timeout)
        self._task_waits = TaskWaits(self._events)
        self._starting: asyncio.Future[None] | None = None
        #: The tenant's shared state: versioned keys in namespaces.
        self.state = StateClient(self.request, self._events)
        #: The tenant's memory: conversation threads.
        self.memory = MemoryClient(self.request)
        self._agents = ServedAgents(
            AgentTransport(
                request=self.request,
                send_reply=self._requests.send_reply,
                call=self.call,
                memory=self.memory,
                events=self._events,
            )
        )

    @property
    def connection_state(self) -> ConnectionState:
        """``idle``, ``connecting``, ``connected``, ``reconnecting`` or ``closed``."""
        return self._connection.state

    @property
    def session(self) -> HelloResult | None:
        """The ``hello`` result of the current connection; ``None`` before the first, or with ``hello`` off."""
        return self._connection.session

    async def start(self) -> GatewayClient:
        """Opens the connection and sends ``hello``. Raises a :class:`GatewayError` if the first connection
        fails (``UNAUTHENTICATED`` / ``FORBIDDEN`` when the gateway refuses the credentials, ``UNAVAILABLE``
        when it cannot be reached); the first connection is not retried. Idempotent."""
        if self._starting is None:
            self._starting = asyncio.ensure_future(self._connection.start())
        await asyncio.shield(self._starting)
        return self

    async def close(self) -> None:
        """Closes for good: stops reconnecting, fails pending requests with ``UNAVAILABLE`` (not retryable),
        cancels running handlers. Returns once the socket is closed. Idempotent."""
        if self._starting is not None and not self._starting.done():
            self._starting.cancel()
        await self._connection.close()
        await self._agents.wait_stopped(STOP_GRACE)
        await self._events.stop_background(STOP_GRACE)

    async def wait_closed(self) -> None:
        """Returns once the client is closed for good (:meth:`close`, 1008, refused credentials, ...)."""
        await self._connection.wait_closed()

    async def __aenter__(self) -> GatewayClient:
        return await self.start()

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()

    def on(self, event: EventName, listener: Listener | None = None) -> Any:
        """Adds a listener of ``event``: a function or a coroutine function.

        Usable as a decorator too::

            @client.on("task.status")
            def on_status(event): ...
        """
        if listener is None:
            return lambda function: self.on(event, function)
        self._events.on(event, listener)
        return listener

    def off(self, event: EventName, listener: Listener) -> None:
        """Removes a listener added with :meth:`on`."""
        self._events.off(event, listener)

    async def request(self, action: str, params: dict[str, Any] | None = None, *, timeout: float | None = None) -> Any:
        """Sends one request and returns its ``result``, or raises a :class:`GatewayError`: the error
        response's, or ``TIMEOUT`` (after ``timeout`` seconds, default the client's ``request_timeout``) or
        ``UNAVAILABLE`` raised locally. The building block of the other methods.

        Example::

            record = await client.request("task.get", {"taskId": task_id}, timeout=2.0)
        """
        return await self._requests.send(action, params or {}, timeout=timeout)

    async def call(
        self,
        agent: str,
        task: str,
        data: Any = None,
        *,
        timeout: float = DEFAULT_CALL_TIMEOUT,
        thread: str | None = None,
        cache: bool | None = None,
        idempotency_key: str | None = None,
        traceparent: str | None = None,
        delegation: str | None = None,
        parent_task_id: str | None = None,
        transparent_retry: bool = True,
        on_progress: ProgressListener | None = None,
    ) -> Any:
        """Runs task ``task`` on agent ``agent`` and returns its output (``coordinator``, sync mode).

        Args:
            data: Sent to the agent as is (``None``: no data).
            timeout: The task's deadline at the gateway, in seconds (sent as ``timeoutMs``).
            thread: The conversation's memory thread: the agent finds it as ``request.thread``.
            cache: ``False``: not answered from the gateway's result cache.
            idempotency_key: A repeated key returns the first call's output once it completed.
            traceparent: W3C trace context to continue (inside a handler, ``request.call`` passes its own).
            delegation: A delegation token (:meth:`delegate`): the call is made on behalf of its minter.
            parent_task_id: From inside a handler: the task this call is made for (``request.call`` passes it).
            transparent_retry: Send the call again, within its deadline, when it is known that no agent
                received it (a retryable error with ``dispatched`` False, or a replica draining with 1001
                before the answer). Never after an agent may have started it. Each retry emits ``call.retry``.
            on_progress: Called with each progress value the agent reports.

        Raises the gateway's error (``AGENT_NOT_FOUND``, ``TIMEOUT``, the agent's ``AGENT_ERROR``, ...) as a
        :class:`GatewayError`. Cancelling the awaiting coroutine cancels the task at the gateway (``task.cancel``).
        """
        extra: dict[str, Any] = {
            "idempotencyKey": idempotency_key,
            "delegation": delegation,
            "parentTaskId": parent_task_id,
            "traceparent": traceparent,
            "thread": thread,
            "cache": cache,
        }

        async def attempt(left: float, last_error: GatewayError | None) -> Any:
            # A call refused while it waited for an approval (its replica shut down) waits for that same
            # approval where it goes next, rather than asking the approvers again.
            details = last_error.details if last_error is not None else None
            if isinstance(details, dict) and isinstance(details.get("approvalId"), str):
                extra["approvalId"] = details["approvalId"]
            return await self._call_once(agent, task, data, left, extra, on_progress)

        return await self._requests.with_retries(
            attempt,
            timeout=timeout,
            enabled=transparent_retry,
            on_retry=lambda number, delay, error: self._events.emit(
                "call.retry", CallRetryInfo(agent, task, number, delay, error)
            ),
        )

    async def _call_once(
        self,
        agent: str,
        task: str,
        data: Any,
        timeout: float,
        extra: dict[str, Any],
        on_progress: ProgressListener | None,
    ) -> Any:
        """One ``coordinator`` attempt of :meth:`call`, with ``timeout`` seconds left."""
        params: dict[str, Any] = {
            "agent": agent,
            "task": task,
            "timeoutMs": max(1, round(timeout * 1000)),
            "mode": "sync",
        }
        if data is not None:
            params["data"] = data
        params.update((name, value) for name, value in extra.items() if value is not None)
        try:
            result = await self._requests.send(
                "coordinator",
                params,
                timeout=timeout + CALL_GRACE,
                on_progress=on_progress,
                on_cancel=self._cancel_call,
            )
        except GatewayError as error:
            # A draining replica closes (1001, with its own reason) only connections with nothing in hand,
            # and handles nothing that arrives after: a call it left unanswered never reached an agent.
            if is_drain_close(error):
                raise error.undispatched() from error
            raise
        if not (isinstance(result, dict) and isinstance(result.get("taskId"), str)):
            raise GatewayError("INTERNAL", "the gateway sent a malformed 'coordinator' result", retryable=False)
        if result.get("status") != "completed":
            raise GatewayError(
                "INTERNAL", f"the gateway answered a sync call with status '{result.get('status')}'", retryable=False
            )
        return result.get("output")

    def _cancel_call(self, task_id: str | None, request_id: int) -> None:
        """The caller stopped waiting for a sync call: the task is canceled at the gateway. Before any
        progress its task id is unknown, so it is canceled by the ``coordinator`` request's id."""
        target: dict[str, Any] = {"taskId": task_id} if task_id is not None else {"requestId": request_id}

        async def cancel() -> None:
            # The call may have ended meanwhile, or the connection with it: nothing left to cancel then.
            with contextlib.suppress(GatewayError):
                await self.request("task.cancel", target)

        self._events.spawn(cancel())

    async def submit(
        self,
        agent: str,
        task: str,
        data: Any = None,
        *,
        timeout: float | None = None,
        idempotency_key: str | None = None,
        thread: str | None = None,
        retry: RetryPolicy | None = None,
        escalation: EscalationPolicy | None = None,
    ) -> SubmitResult:
        """Submits a task to run in the background (``coordinator``, async mode) and returns
        ``{taskId, status}`` once the gateway has stored it. Follow it with :meth:`wait_for_task`, or
        ``task.status`` / ``task.progress`` events.

        Args:
            timeout: The task's deadline, in seconds (default: the gateway's, 30 s).
            idempotency_key: A repeated key (per tenant) returns the first task instead of creating another.
            retry: ``{"attempts", "backoffMs"?}`` for retryable failures (default: the agent's, else the cluster's).
            escalation: ``{"timeoutMs", "onTimeout"?}``: how long to wait for a human if the agent escalates.
        """
        params: dict[str, Any] = {"agent": agent, "task": task, "mode": "async"}
        if data is not None:
            params["data"] = data
        if timeout is not None:
            params["timeoutMs"] = max(1, round(timeout * 1000))
        optional = {"idempotencyKey": idempotency_key, "retry": retry, "escalation": escalation, "thread": thread}
        params.update((name, value) for name, value in optional.items() if value is not None)
        result = await self.request("coordinator", params)
        if not (
            isinstance(result, dict) and isinstance(result.get("taskId"), str) and isinstance(result.get("status"), str)
        ):
            raise GatewayError("INTERNAL", "the gateway answered an async call without a task id", retryable=False)
        # A repeated idempotency key answers the first task's current status.
        return SubmitResult(taskId=result["taskId"], status=result["status"])

    async def wait_for_task(
        self,
        task_id: str,
        *,
        on_progress: Callable[[Any], Any] | None = None,
        on_status: Callable[[TaskStatusEvent], Any] | None = None,
    ) -> TaskOutcome:
        """Returns how an async task or workflow ended: ``{taskId, status, output?, error?}`` (a failed task
        returns too: look at ``status`` and ``error``). Raises ``NOT_FOUND`` for an unknown task.

        Survives reconnection: once reconnected, to any replica, it subscribes again after the last event it
        saw, so no event is lost or seen twice. ``on_progress`` gets each progress value, ``on_status`` each
        ``task.status`` event (both may be coroutine functions).

        Example::

            submitted = await client.submit("reporter", "report", data)
            outcome = await client.wait_for_task(submitted["taskId"], on_progress=print)
        """
        return await self._task_waits.wait(
            task_id, lambda after: self.task_subscribe(task_id, after=after), on_progress, on_status
        )

    def agent(
        self,
        name: str,
        *,
        concurrency: int | None = None,
        tasks: list[str] | None = None,
        meta: dict[str, Any] | None = None,
        cache: CachePolicy | None = None,
    ) -> AgentHandle:
        """An agent served by this client: add handlers with ``@agent.handle(task)``, then
        ``await agent.register()`` or ``await client.serve()``. Raises ``ValueError`` for a name the protocol
        does not allow (``^[a-z0-9][a-z0-9._-]{0,62}$``) or one this client already serves.

        Args:
            concurrency: Tasks this instance runs at once (default 1); enforced by the gateway and locally.
            tasks: Task names to advertise (default: the names of its handlers, not ``"*"``).
            meta: Free metadata, stored with the instance in the cluster registry.
            cache: ``{"tasks": [...], "ttlMs": n}``: tasks whose outputs the gateway may cache.
        """
        return self._agents.add(name, AgentOptions(concurrency=concurrency, tasks=tasks, meta=meta, cache=cache))

    async def serve(self) -> None:
        """Registers every agent of this client not registered yet, then serves them until the client is
        closed for good (:meth:`close` from elsewhere, 1008, refused credentials). Raises a registration's
        refusal as a :class:`GatewayError`.

        Example::

            agent = client.agent("my-agent")

            @agent.handle("process-data")
            async def process_data(request):
                return await process(request.data)

            await client.serve()
        """
        for handle in self._agents.all():
            if not handle.wants_registration:
                await handle.register()
        await self.wait_closed()

    def _on_event(self, frame: dict[str, Any], text: str) -> None:
        """Hands an event to whom it concerns: the agents, the call or wait it belongs to, the listeners."""
        name = frame["event"]
        if name == "task":
            self._agents.on_task(frame, text)
        elif name == "task.cancel":
            self._agents.on_cancel(frame, text)
        elif name == "task.progress":
            self._on_progress(frame, text)
        elif name == "task.status":
            self._on_status(frame, text)
        elif name == "state.changed":
            self.state.on_changed(frame)
        elif name in ("approval.required", "approval.requested", "approval.updated"):
            self._events.emit(name, frame)
        # Other events are a newer gateway's additions: ignored, not errors.

    def _on_progress(self, frame: dict[str, Any], text: str) -> None:
        request_id = frame.get("id")
        if not isinstance(frame.get("taskId"), str) or "progress" not in frame:
            self._events.report_error(UnexpectedFrameError("the gateway sent a malformed task.progress event", text))
            return
        event: TaskProgressEvent = {key: value for key, value in frame.items() if key != "event"}  # type: ignore[assignment]
        if request_id is None:
            event.pop("id", None)
        elif type(request_id) is int:
            listener = self._requests.progress_listener(request_id, event["taskId"])
            if listener is not None:
                self._events.invoke(listener, event["progress"])
        self._task_waits.on_progress(event)
        self._events.emit("task.progress", event)

    def _on_status(self, frame: dict[str, Any], text: str) -> None:
        if not isinstance(frame.get("taskId"), str) or frame.get("status") not in _TASK_STATES:
            self._events.report_error(UnexpectedFrameError("the gateway sent a malformed task.status event", text))
            return
        event: TaskStatusEvent = {key: value for key, value in frame.items() if key != "event"}  # type: ignore[assignment]
        self._task_waits.on_status(event)
        self._events.emit("task.status", event)


class _ConnectionHooks:
    """What the connection asks of its client (see :class:`openclaw.connection.ConnectionHooks`)."""

    def __init__(self, client: GatewayClient) -> None:
        self._client = client

    async def request(self, action: str, params: dict[str, Any]) -> Any:
        return await self._client._requests.send(action, params)

    async def reregister(self) -> None:
        await self._client._agents.reregister()

    def on_response(self, frame: dict[str, Any], text: str) -> None:
        self._client._requests.on_response(frame, text)

    def on_event(self, frame: dict[str, Any], text: str) -> None:
        self._client._on_event(frame, text)

    def on_connected(self) -> None:
        self._client._task_waits.on_connected()
        self._client.state.on_connected()

    def on_socket_closed(self, code: int, reason: str, by_client: bool) -> None:
        self._client._requests.connection_closed(code, reason, by_client)
        self._client._agents.detach_all()

    def on_finished(self) -> None:
        self._client._requests.client_closed()
        self._client._task_waits.close()


async def connect(
    url: str,
    *,
    api_key: str | None = None,
    token: str | None = None,
    reconnect: bool | ReconnectOptions = True,
    request_timeout: float = DEFAULT_REQUEST_TIMEOUT,
    connect_timeout: float = DEFAULT_CONNECT_TIMEOUT,
    client_name: str = DEFAULT_CLIENT_NAME,
    hello: bool = True,
) -> GatewayClient:
    """Connects to a gateway, sends ``hello``, and returns the connected client.

    Args:
        url: The gateway's WebSocket URL, e.g. ``ws://127.0.0.1:18789``.
        api_key: An API key, sent as the ``X-API-Key`` header.
        token: A bearer token (JWT, OAuth access token or API key), sent as ``Authorization: Bearer``.
        reconnect: ``True`` (default backoff: 0.5 s doubling to 30 s, full jitter), ``False``, or
            :class:`ReconnectOptions`.
        request_timeout: Local deadline of a request that has none of its own, in seconds.
        connect_timeout: Deadline of the WebSocket opening handshake, in seconds.
        client_name: The name this client gives in ``hello``.
        hello: Whether to send ``hello`` on each connection and keep its result as ``client.session``.

    The first connection is not retried: it raises a :class:`GatewayError` (``UNAUTHENTICATED`` for
    refused credentials, ``UNAVAILABLE`` when the gateway cannot be reached). Later drops are reconnected.

    Example::

        import os, openclaw

        async with await openclaw.connect(os.environ["OPENCLAW_URL"], api_key=os.environ["OPENCLAW_API_KEY"]) as client:
            print(await client.call("my-agent", "process-data", {"rows": [1, 2, 3]}))
    """
    client = GatewayClient(
        url,
        api_key=api_key,
        token=token,
        reconnect=reconnect,
        request_timeout=request_timeout,
        connect_timeout=connect_timeout,
        client_name=client_name,
        hello=hello,
    )
    try:
        return await client.start()
    except BaseException:
        # Refused, unreachable, or the caller stopped waiting: no connection outlives this call.
        await client.close()
        raise
