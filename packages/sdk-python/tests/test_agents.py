"""Serving agents: handlers, the request object, replies, cancellation and the local concurrency limit."""

from __future__ import annotations

import asyncio
import contextlib
import time
from typing import Any

import pytest
from conftest import next_event, wait_until
from fake_gateway import FakeConnection, FakeGateway

import openclaw
from openclaw import GatewayError, TaskRequest
from openclaw.agent_handle import AgentHandle, AgentOptions, AgentTransport
from openclaw.events import ClientEventSink
from openclaw.shared_state import MemoryClient


def task_event(task_id: str, name: str, data: Any = None, deadline_in: float = 5.0, **fields: Any) -> dict[str, Any]:
    """A task event as the gateway dispatches it."""
    return {
        "event": "task",
        "taskId": task_id,
        "task": name,
        "data": data,
        "from": {"principal": "user-1", "agent": "planner"},
        "deadline": int((time.time() + deadline_in) * 1000),
        "attempt": 1,
        **fields,
    }


async def serving(gateway: FakeGateway, open_client: Any) -> tuple[openclaw.GatewayClient, FakeConnection]:
    client = await open_client()
    connection = await gateway.connection(0)
    assert connection is not None
    return client, connection


async def process(data: dict[str, Any]) -> dict[str, Any]:
    await asyncio.sleep(0)
    return {"rows": len(data["rows"])}


async def test_the_handler_shape_users_see_first_works_as_written(gateway, open_client) -> None:
    client, connection = await serving(gateway, open_client)
    agent = client.agent("my-agent", concurrency=4)

    @agent.handle("process-data")
    async def handler(request):  # type: ignore[no-untyped-def]
        return await process(request.data)

    assert (await agent.register())["instanceId"] == "instance-1"
    assert connection.all("register")[0] == {
        "action": "register",
        "id": connection.all("register")[0]["id"],
        "name": "my-agent",
        "tasks": ["process-data"],
        "concurrency": 4,
    }
    await connection.send(task_event("t-1", "process-data", {"rows": [1, 2, 3]}))
    assert await connection.next("task.result") == {"action": "task.result", "taskId": "t-1", "output": {"rows": 3}}


async def test_the_request_carries_the_task_and_its_context(gateway, open_client) -> None:
    client, connection = await serving(gateway, open_client)
    seen: list[TaskRequest] = []
    agent = client.agent("summarizer")
    agent.handle("summarize", lambda request: seen.append(request) or request.data["text"].upper())
    await agent.register()
    event = task_event("t-1", "summarize", {"text": "hi"}, thread="case-7")
    await connection.send(event)
    assert (await connection.next("task.result"))["output"] == "HI"  # type: ignore[index]
    request = seen[0]
    assert (request.task_id, request.task, request.agent, request.attempt) == ("t-1", "summarize", "summarizer", 1)
    assert request.sender == {"principal": "user-1", "agent": "planner"}
    assert request.deadline == event["deadline"] and 0 < request.time_remaining <= 5
    assert request.traceparent is None and request.thread == "case-7"
    assert request.memory is not None and request.memory.thread == "case-7"
    assert not request.cancelled.is_set()


async def test_a_sync_handler_and_the_wildcard_handler_serve_tasks(gateway, open_client) -> None:
    client, connection = await serving(gateway, open_client)
    agent = client.agent("summarizer")
    agent.handle("summarize", lambda request: "own")
    agent.handle("*", lambda request: f"wildcard:{request.task}")
    await agent.register()
    assert connection.all("register")[0]["tasks"] == ["summarize"]
    await connection.send(task_event("t-1", "summarize"))
    await connection.send(task_event("t-2", "translate"))
    outputs = {frame["taskId"]: frame["output"] for frame in [await connection.next("task.result") for _ in range(2)]}  # type: ignore[index]
    assert outputs == {"t-1": "own", "t-2": "wildcard:translate"}


async def test_progress_goes_out_before_the_result_called_plainly_or_awaited(gateway, open_client) -> None:
    client, connection = await serving(gateway, open_client)
    agent = client.agent("reporter")

    @agent.handle("report")
    async def report(request: TaskRequest) -> str:
        request.progress({"pct": 10})
        await request.progress({"pct": 90})
        return "done"

    await agent.register()
    await connection.send(task_event("t-1", "report"))
    await connection.next("task.result")
    assert connection.frames[-3:] == [
        {"action": "task.progress", "taskId": "t-1", "progress": {"pct": 10}},
        {"action": "task.progress", "taskId": "t-1", "progress": {"pct": 90}},
        {"action": "task.result", "taskId": "t-1", "output": "done"},
    ]


async def test_errors_a_handler_raises_become_task_errors(gateway, open_client) -> None:
    client, connection = await serving(gateway, open_client)
    agent = client.agent("pricer")

    class QuotaError(Exception):
        code = "OVER_QUOTA"
        retryable = True

    raised = {
        "gateway": GatewayError("OUT_OF_STOCK", "none left", retryable=True, details={"sku": "A-1"}),
        "plain": ZeroDivisionError("division by zero"),
        "coded": QuotaError("over quota"),
        "escalate": openclaw.InputRequired("refunds need a human", {"amount": 900}),
    }

    @agent.handle("*")
    async def fail(request: TaskRequest) -> None:
        raise raised[request.task]

    await agent.register()
    for name in raised:
        await connection.send(task_event(f"t-{name}", name))
    errors = {frame["taskId"]: frame["error"] for frame in [await connection.next("task.error") for _ in raised]}  # type: ignore[index]
    assert errors == {
        "t-gateway": {"code": "OUT_OF_STOCK", "message": "none left", "retryable": True, "details": {"sku": "A-1"}},
        "t-plain": {"message": "division by zero"},
        "t-coded": {"message": "over quota", "code": "OVER_QUOTA", "retryable": True},
        "t-escalate": {
            "code": "INPUT_REQUIRED",
            "message": "refunds need a human",
            "retryable": False,
            "details": {"amount": 900},
        },
    }


async def test_an_output_that_is_not_json_becomes_a_task_error(gateway, open_client) -> None:
    client, connection = await serving(gateway, open_client)
    agent = client.agent("summarizer")
    agent.handle("big", lambda request: {"n": object()})
    await agent.register()
    await connection.send(task_event("t-1", "big"))
    frame = await connection.next("task.error")
    assert frame is not None and frame["error"]["code"] == "BAD_REQUEST"
    assert frame["error"]["message"] == "'task.result' cannot be sent: it is not JSON-serialisable"


async def test_cancel_sets_the_event_cancels_the_handler_task_and_answers_canceled(gateway, open_client) -> None:
    client, connection = await serving(gateway, open_client)
    agent = client.agent("slow")
    observed: list[Any] = []
    started = asyncio.Event()

    @agent.handle("work")
    async def work(request: TaskRequest) -> None:
        started.set()
        try:
            await asyncio.sleep(60)
        except asyncio.CancelledError:
            observed.append((request.cancelled.is_set(), request.cancel_reason.code))  # type: ignore[union-attr]
            raise

    await agent.register()
    await connection.send(task_event("t-1", "work"))
    await asyncio.wait_for(started.wait(), 2)
    await connection.send({"event": "task.cancel", "taskId": "t-1"})
    assert await connection.next("task.error") == {
        "action": "task.error",
        "taskId": "t-1",
        "error": {"code": "CANCELED", "message": "task t-1 was canceled by the caller", "retryable": False},
    }
    assert observed == [(True, "CANCELED")]
    assert agent.in_flight == 0


async def test_a_cancel_right_behind_its_task_is_answered_canceled_without_running_the_handler() -> None:
    replies: list[dict[str, Any]] = []
    ran: list[str] = []

    async def no_request(action: str, params: dict[str, Any]) -> Any:
        raise AssertionError("no request expected")

    transport = AgentTransport(
        request=no_request,
        send_reply=lambda frame: replies.append(frame) is None,
        call=no_request,
        memory=MemoryClient(no_request),
        events=ClientEventSink(),
    )
    agent = AgentHandle("slow", AgentOptions(), transport)
    agent.handle("work", lambda request: ran.append(request.task_id))
    # Both events handled in one go, as when they arrive in one read: the handler's task has not started.
    agent.run(task_event("t-1", "work"))
    assert agent.cancel("t-1") is True
    await wait_until(lambda: len(replies) > 0, "the reply")
    assert replies == [
        {
            "action": "task.error",
            "taskId": "t-1",
            "error": {"code": "CANCELED", "message": "task t-1 was canceled by the caller", "retryable": False},
        }
    ]
    assert ran == [] and agent.in_flight == 0


async def test_the_deadline_cancels_the_handler_with_timeout(gateway, open_client) -> None:
    client, connection = await serving(gateway, open_client)
    agent = client.agent("slow")
    agent.handle("work", lambda request: asyncio.sleep(60))
    await agent.register()
    await connection.send(task_event("t-1", "work", deadline_in=0.03))
    assert await connection.next("task.error") == {
        "action": "task.error",
        "taskId": "t-1",
        "error": {"code": "TIMEOUT", "message": "task t-1 passed its deadline", "retryable": True},
    }


async def test_concurrency_is_enforced_locally_too(gateway, open_client) -> None:
    client, connection = await serving(gateway, open_client)
    agent = client.agent("worker", concurrency=2)
    running = 0
    most = 0
    release = asyncio.Event()

    @agent.handle("work")
    async def work(request: TaskRequest) -> int:
        nonlocal running, most
        running += 1
        most = max(most, running)
        await release.wait()
        running -= 1
        return request.data

    await agent.register()
    for number in range(5):
        await connection.send(task_event(f"t-{number}", "work", number))
    await wait_until(lambda: running == 2, "two tasks running")
    await client.ping()  # every task event has been handled: three wait for a slot
    assert (running, agent.in_flight) == (2, 5)
    release.set()
    results = [await connection.next("task.result") for _ in range(5)]
    assert sorted(frame["output"] for frame in results) == [0, 1, 2, 3, 4]  # type: ignore[index]
    assert most == 2


async def test_request_call_passes_the_parent_task_and_trace_context(gateway, open_client) -> None:
    client, connection = await serving(gateway, open_client)
    gateway.script("coordinator", lambda frame, c: c.ok(frame, {"taskId": "t-2", "status": "completed", "output": 42}))
    agent = client.agent("orchestrator")

    @agent.handle("plan")
    async def plan(request: TaskRequest) -> Any:
        return await request.call("pricer", "quote", {"sku": "A-1"}, timeout=3.0)

    await agent.register()
    traceparent = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"
    await connection.send(task_event("t-1", "plan", traceparent=traceparent))
    assert (await connection.next("task.result"))["output"] == 42  # type: ignore[index]
    call = connection.all("coordinator")[0]
    assert (call["parentTaskId"], call["traceparent"], call["timeoutMs"], call["data"]) == (
        "t-1",
        traceparent,
        3000,
        {"sku": "A-1"},
    )


async def test_request_memory_reads_and_extends_the_tasks_thread(gateway, open_client) -> None:
    client, connection = await serving(gateway, open_client)
    gateway.script("memory.append", lambda frame, c: c.ok(frame, {"thread": frame["thread"], "seq": 4}))
    agent = client.agent("support")

    @agent.handle("answer")
    async def answer(request: TaskRequest) -> int:
        assert request.memory is not None
        return await request.memory.append({"role": "agent", "content": "fixed"})

    await agent.register()
    await connection.send(task_event("t-1", "answer", thread="case-7"))
    assert (await connection.next("task.result"))["output"] == 4  # type: ignore[index]
    assert connection.all("memory.append")[0]["entries"] == [{"role": "agent", "content": "fixed"}]
    assert connection.all("memory.append")[0]["thread"] == "case-7"


async def test_a_lost_connection_cancels_running_tasks_and_their_replies_go_nowhere(gateway, open_client) -> None:
    client, connection = await serving(gateway, open_client)
    agent = client.agent("slow", concurrency=2)
    reasons: list[str] = []
    finished = asyncio.Event()

    @agent.handle("work")
    async def work(request: TaskRequest) -> str:
        try:
            await request.cancelled.wait()
        finally:
            reasons.append(request.cancel_reason.code)  # type: ignore[union-attr]
        return "late"

    agent.handle("shielded", lambda request: _late_reply(request, finished))
    await agent.register()
    await connection.send(task_event("t-1", "work"))
    await connection.send(task_event("t-2", "shielded"))
    await client.ping()
    connected = next_event(client, "connected")
    await connection.close(1012)
    await asyncio.wait_for(connected, 2)
    await asyncio.wait_for(finished.wait(), 2)
    await client.ping()
    second = await gateway.connection(1)
    assert second is not None
    assert [frame["action"] for frame in second.frames] == ["hello", "register", "ping"]
    assert reasons == ["UNAVAILABLE"]
    assert agent.in_flight == 0


async def _late_reply(request: TaskRequest, finished: asyncio.Event) -> str:
    """Finishes after the client reconnected, ignoring cancellation: its reply must not reach the new connection."""
    with contextlib.suppress(asyncio.CancelledError):
        await request.cancelled.wait()
    await asyncio.sleep(0.05)
    finished.set()
    return "late"


async def test_serve_registers_every_agent_and_returns_when_the_client_closes(gateway, open_client) -> None:
    client, connection = await serving(gateway, open_client)
    client.agent("first").handle("a", lambda request: 1)
    client.agent("second").handle("b", lambda request: 2)
    serving_task = asyncio.ensure_future(client.serve())
    await wait_until(lambda: len(connection.all("register")) == 2, "two registrations")
    assert [frame["name"] for frame in connection.all("register")] == ["first", "second"]
    assert not serving_task.done()
    await client.close()
    await asyncio.wait_for(serving_task, 2)


def test_agent_names_and_handlers_are_checked() -> None:
    client = openclaw.GatewayClient("ws://127.0.0.1:1")
    with pytest.raises(ValueError, match="expected"):
        client.agent("Not Valid")
    agent = client.agent("dup")
    agent.handle("t", lambda request: 1)
    with pytest.raises(ValueError, match="this client already has an agent named 'dup'"):
        client.agent("dup")
    with pytest.raises(ValueError, match="agent 'dup' already has a handler for task 't'"):
        agent.handle("t", lambda request: 2)
    with pytest.raises(ValueError, match="concurrency"):
        client.agent("zero", concurrency=0)


async def test_a_malformed_task_event_is_answered_bad_request_and_reported(gateway, open_client) -> None:
    client, connection = await serving(gateway, open_client)
    reported: list[BaseException] = []
    client.on("error", reported.append)
    client.agent("summarizer").handle("summarize", lambda request: 1)
    await connection.send({"event": "task", "taskId": "t-1", "task": "summarize"})
    frame = await connection.next("task.error")
    assert frame is not None and frame["error"]["code"] == "BAD_REQUEST"
    assert [str(error) for error in reported] == ["the gateway sent a malformed task event"]
