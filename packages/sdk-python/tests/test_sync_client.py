"""The blocking facade, for scripts: the scripted gateway runs on its own event loop thread here."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from typing import Any

import pytest
from fake_gateway import FakeConnection, FakeGateway

import openclaw
from openclaw import errors


class GatewayThread:
    """A scripted gateway on an event loop in a thread of its own, so the test's thread can block."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()
        self.gateway: FakeGateway = self.run(FakeGateway.start())

    def run(self, coroutine: Any) -> Any:
        return asyncio.run_coroutine_threadsafe(coroutine, self.loop).result(timeout=5)

    def stop(self) -> None:
        self.run(self.gateway.close())
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join()
        self.loop.close()


@pytest.fixture
def gateway_thread() -> Iterator[GatewayThread]:
    started = GatewayThread()
    yield started
    started.stop()


async def answer_call(frame: dict[str, Any], connection: FakeConnection) -> None:
    if frame.get("mode") == "async":
        await connection.ok(frame, {"taskId": "t-9", "status": "submitted"})
        return
    await connection.send({"event": "task.progress", "id": frame["id"], "taskId": "t-1", "progress": "half"})
    await connection.ok(frame, {"taskId": "t-1", "status": "completed", "output": {"echo": frame.get("data")}})


async def answer_subscribe(frame: dict[str, Any], connection: FakeConnection) -> None:
    await connection.ok(frame, {"taskId": frame["taskId"], "status": "working"})
    await connection.send(
        {"event": "task.status", "taskId": frame["taskId"], "status": "completed", "output": 5, "cursor": "1-0"}
    )


def test_the_sync_client_blocks_until_each_request_ends(gateway_thread: GatewayThread) -> None:
    gateway = gateway_thread.gateway
    gateway.script("coordinator", answer_call)
    gateway.script("task.subscribe", answer_subscribe)
    gateway.script(
        "state.get", lambda frame, c: c.fail(frame, {"code": "NOT_FOUND", "message": "absent", "retryable": False})
    )
    gateway.script("state.set", lambda frame, c: c.ok(frame, {"version": 1}))
    gateway.script("memory.read", lambda frame, c: c.ok(frame, {"thread": frame["thread"], "entries": []}))
    progress: list[Any] = []
    with openclaw.connect_sync(gateway.url, api_key="key-1") as client:
        assert client.connection_state == "connected"
        assert client.session is not None and client.session["sessionId"] == "session-1"
        assert client.call("echo", "echo", {"n": 1}, on_progress=progress.append) == {"echo": {"n": 1}}
        assert progress == ["half"]
        submitted = client.submit("reporter", "report", {"q": 3})
        assert submitted == {"taskId": "t-9", "status": "submitted"}
        assert client.wait_for_task(submitted["taskId"]) == {"taskId": "t-9", "status": "completed", "output": 5}
        assert client.state.get("orders", "o-1") is None
        assert client.state.set("orders", "o-1", {"total": 1}, if_version=0) == {"version": 1}
        assert client.memory.read("case-7", last=5) == []
        assert client.ping()["pong"] is True
        gateway.script(
            "coordinator",
            lambda frame, c: c.fail(frame, {"code": "AGENT_NOT_FOUND", "message": "no", "retryable": False}),
        )
        with pytest.raises(errors.AgentNotFound):
            client.call("ghost", "haunt")
    assert client.connection_state == "closed"
    client.close()  # idempotent
    with pytest.raises(RuntimeError, match="closed"):
        client.ping()


def test_connect_sync_raises_the_refusal_and_leaves_no_thread_behind(gateway_thread: GatewayThread) -> None:
    gateway_thread.gateway.api_key = "right"
    threads = threading.active_count()
    with pytest.raises(openclaw.AuthenticationError):
        openclaw.connect_sync(gateway_thread.gateway.url, api_key="wrong")
    assert threading.active_count() == threads


def test_a_blocking_method_called_from_the_clients_own_loop_raises_instead_of_deadlocking(
    gateway_thread: GatewayThread,
) -> None:
    outcome: list[BaseException] = []
    with openclaw.connect_sync(gateway_thread.gateway.url) as client:

        def listener(event: Any) -> None:
            try:
                client.ping()
            except RuntimeError as error:
                outcome.append(error)

        client.on("task.status", listener)
        connection = gateway_thread.run(gateway_thread.gateway.connection(0))
        gateway_thread.run(connection.send({"event": "task.status", "taskId": "t-1", "status": "working"}))
        client.ping()  # the event was handled before this answer
    assert len(outcome) == 1 and "event loop thread" in str(outcome[0])
