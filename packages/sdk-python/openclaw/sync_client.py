"""A blocking facade of the client for scripts without asyncio (:func:`connect_sync`).

The asyncio client runs on an event loop in a background thread; each method here runs the client's
coroutine there and blocks until it ends. Listeners and watch callbacks run on that thread too, so they
must not call back into the blocking methods (use the async client inside them, or hand work to your
own thread). Serving agents needs the asyncio client.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable, Coroutine, Iterable, Iterator
from typing import Any, Literal, TypeVar

from .client import DEFAULT_CALL_TIMEOUT, GatewayClient, connect
from .events import EventName, Listener
from .pending_requests import ProgressListener
from .shared_state import ChangeListener, StateWatch
from .types import (
    AgentInfo,
    ApprovalRecord,
    ConnectionState,
    DelegateResult,
    EscalationPolicy,
    HelloResult,
    MemoryEntry,
    MemoryEntryInput,
    PingResult,
    RetryPolicy,
    StateEntry,
    StateListItem,
    StatePage,
    StateSetResult,
    SubmitResult,
    TaskOutcome,
    TaskRecord,
    TaskState,
    TaskStatusEvent,
)

T = TypeVar("T")


class _LoopThread:
    """An event loop running in a daemon thread, and how to run coroutines on it from other threads."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, name="openclaw-event-loop", daemon=True)
        self.thread.start()

    def run(self, function: Callable[..., Coroutine[Any, Any, T]], *args: Any, **kwargs: Any) -> T:
        """Runs ``function(*args, **kwargs)`` on the loop and blocks until it ends; Ctrl-C cancels it."""
        if threading.current_thread() is self.thread:
            raise RuntimeError(
                "a blocking openclaw method was called on the client's own event loop thread "
                "(from a listener or callback): use the asyncio client there"
            )
        if self.loop.is_closed():
            raise RuntimeError("the client is closed")
        future = asyncio.run_coroutine_threadsafe(function(*args, **kwargs), self.loop)
        try:
            return future.result()
        except KeyboardInterrupt:
            # Cancelling the coroutine cancels what it waits for (a call's task, at the gateway too).
            future.cancel()
            raise

    def stop(self) -> None:
        if self.loop.is_closed():
            return
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join()
        self.loop.close()


class SyncGatewayClient:
    """The blocking face of a :class:`GatewayClient`; made by :func:`connect_sync`. Its methods take the
    same arguments as the async client's and block until they end.

    Example::

        with openclaw.connect_sync(os.environ["OPENCLAW_URL"], api_key=os.environ["OPENCLAW_API_KEY"]) as client:
            print(client.call("my-agent", "process-data", {"rows": [1, 2, 3]}))
    """

    def __init__(self, client: GatewayClient, runner: _LoopThread) -> None:
        self._client = client
        self._runner = runner
        #: The tenant's shared state, blocking.
        self.state = SyncStateClient(client, runner)
        #: The tenant's memory, blocking.
        self.memory = SyncMemoryClient(client, runner)

    @property
    def client(self) -> GatewayClient:
        """The asyncio client behind this one (its coroutines run on the background loop only)."""
        return self._client

    @property
    def session(self) -> HelloResult | None:
        return self._client.session

    @property
    def connection_state(self) -> ConnectionState:
        return self._client.connection_state

    def close(self) -> None:
        """Closes the client and stops its event loop thread. Idempotent."""
        if self._runner.loop.is_closed():
            return
        try:
            self._runner.run(self._client.close)
        finally:
            self._runner.stop()

    def __enter__(self) -> SyncGatewayClient:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def on(self, event: EventName, listener: Listener) -> Listener:
        """Adds a listener; it runs on the client's event loop thread."""

        async def add() -> None:
            self._client.on(event, listener)

        self._runner.run(add)
        return listener

    def request(self, action: str, params: dict[str, Any] | None = None, *, timeout: float | None = None) -> Any:
        return self._runner.run(self._client.request, action, params, timeout=timeout)

    def call(
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
        transparent_retry: bool = True,
        on_progress: ProgressListener | None = None,
    ) -> Any:
        """Runs a task on an agent and returns its output (see :meth:`GatewayClient.call`)."""
        return self._runner.run(
            self._client.call,
            agent,
            task,
            data,
            timeout=timeout,
            thread=thread,
            cache=cache,
            idempotency_key=idempotency_key,
            traceparent=traceparent,
            delegation=delegation,
            transparent_retry=transparent_retry,
            on_progress=on_progress,
        )

    def submit(
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
        """Submits an async task (see :meth:`GatewayClient.submit`)."""
        return self._runner.run(
            self._client.submit,
            agent,
            task,
            data,
            timeout=timeout,
            idempotency_key=idempotency_key,
            thread=thread,
            retry=retry,
            escalation=escalation,
        )

    def wait_for_task(
        self,
        task_id: str,
        *,
        on_progress: Callable[[Any], Any] | None = None,
        on_status: Callable[[TaskStatusEvent], Any] | None = None,
    ) -> TaskOutcome:
        """Blocks until an async task ends (see :meth:`GatewayClient.wait_for_task`)."""
        return self._runner.run(self._client.wait_for_task, task_id, on_progress=on_progress, on_status=on_status)

    def task_get(self, task_id: str) -> TaskRecord:
        return self._runner.run(self._client.task_get, task_id)

    def task_cancel(self, task_id: str) -> SubmitResult:
        return self._runner.run(self._client.task_cancel, task_id)

    def task_list(self, status: TaskState = "failed", *, limit: int | None = None) -> list[TaskRecord]:
        return self._runner.run(self._client.task_list, status, limit=limit)

    def task_respond(self, task_id: str, output: Any) -> None:
        self._runner.run(self._client.task_respond, task_id, output)

    def task_retry(self, task_id: str) -> None:
        self._runner.run(self._client.task_retry, task_id)

    def start_workflow(
        self,
        workflow: dict[str, Any],
        input: Any = None,
        *,
        idempotency_key: str | None = None,
        thread: str | None = None,
    ) -> SubmitResult:
        return self._runner.run(
            self._client.start_workflow, workflow, input, idempotency_key=idempotency_key, thread=thread
        )

    def approval_list(
        self,
        status: Literal["pending", "approved", "rejected", "expired", "consumed", "all"] = "pending",
        *,
        limit: int | None = None,
    ) -> list[ApprovalRecord]:
        return self._runner.run(self._client.approval_list, status, limit=limit)

    def approval_get(self, approval_id: str) -> ApprovalRecord:
        return self._runner.run(self._client.approval_get, approval_id)

    def approval_decide(
        self, approval_id: str, decision: Literal["approve", "reject"], reason: str | None = None
    ) -> ApprovalRecord:
        return self._runner.run(self._client.approval_decide, approval_id, decision, reason)

    def agents_list(self) -> list[AgentInfo]:
        return self._runner.run(self._client.agents_list)

    def ping(self) -> PingResult:
        return self._runner.run(self._client.ping)

    def delegate(self, agent: str, permissions: list[str], **options: Any) -> DelegateResult:
        return self._runner.run(self._client.delegate, agent, permissions, **options)


class SyncStateWatch:
    """A watch started by :meth:`SyncStateClient.watch`; ``watch.close()`` ends it."""

    def __init__(self, watch: StateWatch, runner: _LoopThread) -> None:
        self._watch = watch
        self._runner = runner

    def close(self) -> None:
        self._runner.run(self._watch.close)


class SyncStateClient:
    """The tenant's shared state, blocking (see :class:`openclaw.StateClient`)."""

    def __init__(self, client: GatewayClient, runner: _LoopThread) -> None:
        self._state = client.state
        self._runner = runner

    def get(self, namespace: str, key: str) -> StateEntry | None:
        return self._runner.run(self._state.get, namespace, key)

    def set(
        self, namespace: str, key: str, value: Any, *, ttl_ms: int | None = None, if_version: int | None = None
    ) -> StateSetResult:
        return self._runner.run(self._state.set, namespace, key, value, ttl_ms=ttl_ms, if_version=if_version)

    def delete(self, namespace: str, key: str, *, if_version: int | None = None) -> bool:
        return self._runner.run(self._state.delete, namespace, key, if_version=if_version)

    def list(
        self, namespace: str, *, prefix: str | None = None, limit: int | None = None, cursor: str | None = None
    ) -> StatePage:
        return self._runner.run(self._state.list, namespace, prefix=prefix, limit=limit, cursor=cursor)

    def keys(self, namespace: str, *, prefix: str | None = None) -> Iterator[StateListItem]:
        """Every key of a namespace (with a prefix), fetched page after page as the iteration goes."""
        cursor: str | None = None
        while True:
            page = self.list(namespace, prefix=prefix, limit=1000, cursor=cursor)
            yield from page["items"]
            cursor = page.get("cursor")
            if cursor is None:
                return

    def watch(self, namespace: str, listener: ChangeListener, *, prefix: str = "") -> SyncStateWatch:
        """Calls ``listener`` (on the client's event loop thread) with every change under ``prefix``."""
        return SyncStateWatch(self._runner.run(self._state.watch, namespace, listener, prefix=prefix), self._runner)


class SyncMemoryClient:
    """The tenant's memory, blocking (see :class:`openclaw.MemoryClient`)."""

    def __init__(self, client: GatewayClient, runner: _LoopThread) -> None:
        self._memory = client.memory
        self._runner = runner

    def append(self, thread: str, entries: MemoryEntryInput | Iterable[MemoryEntryInput]) -> int:
        return self._runner.run(self._memory.append, thread, entries)

    def read(self, thread: str, *, after: int | None = None, last: int | None = None) -> list[MemoryEntry]:
        return self._runner.run(self._memory.read, thread, after=after, last=last)

    def clear(self, thread: str) -> int:
        return self._runner.run(self._memory.clear, thread)


def connect_sync(url: str, **options: Any) -> SyncGatewayClient:
    """Connects to a gateway for a script without asyncio: the same arguments as :func:`openclaw.connect`;
    returns a client whose methods block. Close it (or use it in a ``with`` block) to stop its thread.

    Example::

        client = openclaw.connect_sync("ws://127.0.0.1:18789", api_key="my-key")
        try:
            print(client.call("summarizer", "summarize", {"text": "hello"}))
        finally:
            client.close()
    """
    runner = _LoopThread()
    try:
        client = runner.run(connect, url, **options)
    except BaseException:
        runner.stop()
        raise
    return SyncGatewayClient(client, runner)
