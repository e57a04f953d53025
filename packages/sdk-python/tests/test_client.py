"""The client's connection, requests, calls and reconnection, against the scripted gateway."""

from __future__ import annotations

import asyncio
import inspect
import socket
from typing import Any

import pytest
import websockets
from conftest import FAST, next_event, wait_until
from fake_gateway import FakeConnection, FakeGateway

import openclaw
from openclaw import GatewayError, ReconnectOptions, errors

#: Whether the installed websockets keeps a refused upgrade's body (the new implementation, 14+ by default).
READS_REFUSAL_BODY = "additional_headers" in inspect.signature(websockets.connect).parameters
BUSY = {"code": "AGENT_UNAVAILABLE", "message": "all instances busy", "retryable": True, "dispatched": False}


async def first_connection(gateway: FakeGateway) -> FakeConnection:
    connection = await gateway.connection(0)
    assert connection is not None
    return connection


async def test_sends_hello_with_the_client_name_and_keeps_the_result_as_the_session(gateway, open_client) -> None:
    client = await open_client(client_name="billing")
    connection = await first_connection(gateway)
    assert connection.all("hello") == [
        {"action": "hello", "id": 1, "protocol": 1, "client": {"name": "billing", "version": openclaw.SDK_VERSION}}
    ]
    assert client.connection_state == "connected"
    assert client.session is not None and client.session["sessionId"] == "session-1"


async def test_sends_an_api_key_as_x_api_key_and_a_token_as_a_bearer() -> None:
    gateway = await FakeGateway.start(api_key="key-0123456789abcdef")
    try:
        by_key = await openclaw.connect(gateway.url, api_key="key-0123456789abcdef")
        by_token = await openclaw.connect(gateway.url, token="key-0123456789abcdef")
        first, second = await gateway.connection(0), await gateway.connection(1)
        assert first is not None and second is not None
        assert first.headers.get("X-API-Key") == "key-0123456789abcdef"
        assert first.headers.get("Authorization") is None
        assert second.headers.get("Authorization") == "Bearer key-0123456789abcdef"
        assert second.headers.get("X-API-Key") is None
        await by_key.close()
        await by_token.close()
    finally:
        await gateway.close()


async def test_refused_credentials_raise_unauthenticated_at_connect_without_retrying() -> None:
    gateway = await FakeGateway.start(api_key="key-0123456789abcdef")
    try:
        with pytest.raises(openclaw.AuthenticationError) as raised:
            await openclaw.connect(gateway.url, api_key="wrong", reconnect=FAST)
        assert raised.value.code == "UNAUTHENTICATED"
        assert raised.value.retryable is False
        # Ten initial backoff windows: a client that retried would have come back by now.
        await asyncio.sleep(0.1)
        assert gateway.upgrades == 1
        assert gateway.connections == []
    finally:
        await gateway.close()


async def test_refused_credentials_on_reconnection_close_the_client_for_good() -> None:
    gateway = await FakeGateway.start(api_key="key-0123456789abcdef")
    try:
        client = await openclaw.connect(gateway.url, api_key="key-0123456789abcdef", reconnect=FAST)
        reported: list[BaseException] = []
        client.on("error", reported.append)
        closed = next_event(client, "closed")
        gateway.api_key = "key-rotated-0123456789"
        await (await first_connection(gateway)).close(1012)
        info = await asyncio.wait_for(closed, 2)
        assert info.reason == "the gateway refused the credentials (UNAUTHENTICATED)"
        assert [error.code for error in reported] == ["UNAUTHENTICATED"]  # type: ignore[attr-defined]
        assert client.connection_state == "closed"
        await client.close()
    finally:
        await gateway.close()


async def test_nothing_listening_raises_unavailable_without_the_url_query() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    with pytest.raises(errors.Unavailable) as raised:
        await openclaw.connect(f"ws://127.0.0.1:{port}/?api_key=secret")
    assert raised.value.retryable is True
    assert f"ws://127.0.0.1:{port}/" in raised.value.message
    assert "secret" not in raised.value.message


async def test_a_client_never_started_refuses_requests_at_once_and_call_does_not_wait(gateway) -> None:
    client = openclaw.GatewayClient(gateway.url)
    with pytest.raises(errors.Unavailable) as raised:
        await asyncio.wait_for(client.call("summarizer", "summarize", timeout=5.0), 1.0)
    assert raised.value.retryable is False
    assert raised.value.message == "cannot send 'coordinator': the client was not started (call start())"


def test_refuses_a_url_that_is_not_ws_or_wss() -> None:
    with pytest.raises(ValueError, match="url: expected a ws:// or wss:// URL"):
        openclaw.GatewayClient("http://127.0.0.1:1")


async def test_matches_responses_to_requests_by_id_in_any_order(gateway, open_client) -> None:
    client = await open_client()
    connection = await first_connection(gateway)
    first = asyncio.ensure_future(client.task_get("t-1"))
    second = asyncio.ensure_future(client.task_get("t-2"))
    frame_one, frame_two = await connection.next("task.get"), await connection.next("task.get")
    assert frame_one and frame_two and frame_one["id"] != frame_two["id"]
    record = {"agent": "a", "task": "t", "status": "completed", "createdAt": 1, "updatedAt": 2}
    await connection.ok(frame_two, {"taskId": "t-2", **record})
    await connection.ok(frame_one, {"taskId": "t-1", **record})
    assert (await first)["taskId"] == "t-1"
    assert (await second)["taskId"] == "t-2"


async def test_a_request_times_out_locally_and_its_late_response_is_dropped_quietly(gateway, open_client) -> None:
    client = await open_client()
    reported: list[BaseException] = []
    client.on("error", reported.append)
    connection = await first_connection(gateway)
    with pytest.raises(errors.Timeout) as raised:
        await client.request("task.get", {"taskId": "t-1"}, timeout=0.03)
    assert raised.value.retryable is True
    assert raised.value.message == "no response to 'task.get' within 0.03 s"
    late = await connection.next("task.get")
    assert late is not None
    await connection.ok(late, {"taskId": "t-1"})
    await client.ping()  # frames arrive in order: the late response has been handled by now
    assert reported == []


async def test_pending_requests_fail_with_retryable_unavailable_when_the_connection_drops(gateway, open_client) -> None:
    client = await open_client(reconnect=False)
    connection = await first_connection(gateway)
    pending = asyncio.ensure_future(client.task_get("t-1"))
    await connection.next("task.get")
    await connection.close(1012, "restart")
    with pytest.raises(errors.Unavailable) as raised:
        await pending
    assert raised.value.retryable is True
    assert raised.value.details == {"closeCode": 1012, "reason": "restart"}
    with pytest.raises(errors.Unavailable):
        await client.ping()


async def test_close_fails_pending_requests_not_retryable_and_is_idempotent(gateway, open_client) -> None:
    client = await open_client()
    closed = next_event(client, "closed")
    pending = asyncio.ensure_future(client.task_get("t-1"))
    await (await first_connection(gateway)).next("task.get")
    await asyncio.gather(client.close(), client.close())
    with pytest.raises(errors.Unavailable) as raised:
        await pending
    assert raised.value.retryable is False
    info = await closed
    assert (info.code, info.reason) == (1000, "closed by the client")
    assert client.connection_state == "closed"


async def test_refuses_without_sending_a_frame_over_the_advertised_limit_or_not_json() -> None:
    gateway = await FakeGateway.start(max_frame_bytes=200)
    try:
        client = await openclaw.connect(gateway.url)
        with pytest.raises(errors.PayloadTooLarge) as too_large:
            await client.call("summarizer", "summarize", {"text": "x" * 500})
        assert too_large.value.details == {"maxFrameBytes": 200}
        with pytest.raises(errors.BadRequest):
            await client.request("task.get", {"taskId": object()})
        await client.ping()
        assert [frame["action"] for frame in (await first_connection(gateway)).frames] == ["hello", "ping"]
        await client.close()
    finally:
        await gateway.close()


async def test_a_result_that_does_not_match_the_protocol_raises_internal(gateway, open_client) -> None:
    client = await open_client()
    gateway.script("agents.list", lambda frame, connection: connection.ok(frame, {"not": "a list"}))
    with pytest.raises(errors.Internal, match=r"the gateway sent a malformed 'agents\.list' result"):
        await client.agents_list()


async def test_call_sends_a_sync_coordinator_request_and_hands_progress_to_on_progress(gateway, open_client) -> None:
    client = await open_client()
    connection = await first_connection(gateway)
    progress: list[Any] = []
    events: list[Any] = []
    client.on("task.progress", events.append)
    output = asyncio.ensure_future(
        client.call("summarizer", "summarize", {"text": "hi"}, timeout=2.0, on_progress=progress.append)
    )
    frame = await connection.next("coordinator")
    assert frame == {
        "action": "coordinator",
        "id": frame["id"],
        "agent": "summarizer",
        "task": "summarize",
        "data": {"text": "hi"},
        "timeoutMs": 2000,
        "mode": "sync",
    }
    await connection.send({"event": "task.progress", "id": frame["id"], "taskId": "t-1", "progress": {"pct": 50}})
    await connection.send({"event": "task.progress", "id": 9999, "taskId": "t-other", "progress": 1})
    await connection.ok(frame, {"taskId": "t-1", "status": "completed", "output": {"summary": "hi"}})
    assert await output == {"summary": "hi"}
    assert progress == [{"pct": 50}]
    assert [event["taskId"] for event in events] == ["t-1", "t-other"]


async def test_cancelling_a_call_cancels_its_task_by_request_id_then_by_task_id(gateway, open_client) -> None:
    client = await open_client()
    connection = await first_connection(gateway)
    gateway.script(
        "task.cancel", lambda frame, c: c.ok(frame, {"taskId": frame.get("taskId", "t-?"), "status": "canceled"})
    )

    before_progress = asyncio.ensure_future(client.call("summarizer", "summarize"))
    first = await connection.next("coordinator")
    before_progress.cancel()
    with pytest.raises(asyncio.CancelledError):
        await before_progress
    await wait_until(lambda: len(connection.all("task.cancel")) == 1, "the first task.cancel")
    assert connection.all("task.cancel")[0]["requestId"] == first["id"]

    after_progress = asyncio.ensure_future(client.call("summarizer", "summarize"))
    second = await connection.next("coordinator")
    await connection.send({"event": "task.progress", "id": second["id"], "taskId": "t-9", "progress": 1})
    await client.ping()  # the progress has been handled
    after_progress.cancel()
    await wait_until(lambda: len(connection.all("task.cancel")) == 2, "the second task.cancel")
    assert connection.all("task.cancel")[1]["taskId"] == "t-9"


async def test_a_call_no_agent_received_is_sent_again_with_what_is_left_of_the_deadline(gateway, open_client) -> None:
    client = await open_client()
    connection = await first_connection(gateway)
    retries: list[Any] = []
    client.on("call.retry", retries.append)
    output = asyncio.ensure_future(client.call("summarizer", "summarize", {"text": "hi"}, timeout=5.0))
    first = await connection.next("coordinator")
    await connection.fail(first, {**BUSY, "retryAfterMs": 30})
    second = await connection.next("coordinator")
    assert second is not None and second["id"] != first["id"]
    assert second["timeoutMs"] <= 5000 - 30
    await connection.ok(second, {"taskId": "t-2", "status": "completed", "output": "done"})
    assert await output == "done"
    assert [(info.attempt, info.error.code) for info in retries] == [(2, "AGENT_UNAVAILABLE")]
    assert retries[0].delay >= 0.03


async def test_a_call_gives_up_with_the_last_error_when_the_deadline_leaves_no_room(gateway, open_client) -> None:
    client = await open_client()
    gateway.script("coordinator", lambda frame, c: c.fail(frame, {**BUSY, "retryAfterMs": 100}))
    with pytest.raises(errors.AgentUnavailable) as raised:
        await client.call("summarizer", "summarize", timeout=0.35)
    assert raised.value.dispatched is False
    attempts = len((await first_connection(gateway)).all("coordinator"))
    assert 2 <= attempts <= 4  # 100 ms apart within 350 ms


async def test_a_call_made_while_reconnecting_waits_for_the_connection(gateway, open_client) -> None:
    client = await open_client(reconnect=ReconnectOptions(initial_delay=0.15, max_delay=0.15))
    disconnected = next_event(client, "disconnected")
    (await first_connection(gateway)).drop()
    await disconnected
    output = asyncio.ensure_future(client.call("summarizer", "summarize", timeout=5.0))
    second = await gateway.connection(1)
    assert second is not None
    frame = await second.next("coordinator")
    assert frame is not None
    await second.ok(frame, {"taskId": "t-1", "status": "completed", "output": "later"})
    assert await output == "later"


async def test_backs_off_harder_after_1013(gateway, open_client) -> None:
    client = await open_client(reconnect=ReconnectOptions(initial_delay=0.01, max_delay=1.0))
    reconnecting = next_event(client, "reconnecting")
    connected = next_event(client, "connected")
    await (await first_connection(gateway)).close(1013, "try again later")
    # Step 3 of 10 ms doubling: a cap of 80 ms, so 40 to 80 ms (a plain close would be 0 to 10 ms).
    info = await reconnecting
    assert 0.04 <= info.delay <= 0.08
    assert (await asyncio.wait_for(connected, 2)).reconnected is True


async def test_waits_the_retry_after_of_a_refused_upgrade_before_trying_again(gateway, open_client) -> None:
    client = await open_client()
    error = {"code": "UNAVAILABLE", "message": "at its connection cap", "retryable": True, "retryAfterMs": 300}
    gateway.refusals.append((503, error, {}))
    delays: list[float] = []
    client.on("reconnecting", lambda info: delays.append(info.delay))
    connected = next_event(client, "connected")
    await (await first_connection(gateway)).close(1012)
    assert (await asyncio.wait_for(connected, 2)).reconnected is True
    assert len(delays) == 2 and delays[0] <= 0.01
    if READS_REFUSAL_BODY:
        assert 0.3 <= delays[1] <= 0.32  # what the refusal asked, plus jitter within the backoff's cap
    else:
        assert delays[1] <= 0.02  # legacy websockets drops the body: the usual backoff


async def test_waits_the_retry_after_header_of_a_refusal_that_is_not_the_gateways_json(gateway, open_client) -> None:
    client = await open_client(reconnect=ReconnectOptions(initial_delay=0.01, max_delay=0.01))
    gateway.refusals.append((503, None, {"Retry-After": "1"}))
    delays: list[float] = []
    client.on("reconnecting", lambda info: delays.append(info.delay))
    (await first_connection(gateway)).drop()
    assert await gateway.connection(1, timeout=3.0) is not None
    assert len(delays) == 2 and delays[1] >= 1.0


async def test_never_reconnects_after_1008(gateway, open_client) -> None:
    client = await open_client()
    disconnected = next_event(client, "disconnected")
    closed = next_event(client, "closed")
    await (await first_connection(gateway)).close(1008, "credentials revoked")
    info = await disconnected
    assert (info.code, info.reason, info.will_reconnect) == (1008, "credentials revoked", False)
    assert (await closed).reason == "the gateway closed the connection with 1008"
    assert await gateway.connection(1, timeout=0.1) is None
    assert client.connection_state == "closed"


async def test_gives_up_after_max_attempts(gateway, open_client) -> None:
    client = await open_client(reconnect=ReconnectOptions(initial_delay=0.005, max_delay=0.01, max_attempts=2))
    attempts: list[Any] = []
    client.on("reconnecting", attempts.append)
    client.on("error", lambda error: None)
    closed = next_event(client, "closed")
    await gateway.close()  # the port now refuses connections
    assert (await asyncio.wait_for(closed, 2)).reason == "gave up reconnecting after 2 attempts"
    assert [info.attempt for info in attempts] == [1, 2]
    assert isinstance(attempts[1].last_error, errors.Unavailable)


async def test_close_during_the_backoff_stops_reconnecting(gateway, open_client) -> None:
    client = await open_client(reconnect=ReconnectOptions(initial_delay=0.2, max_delay=0.2))
    reconnecting = next_event(client, "reconnecting")
    await (await first_connection(gateway)).close(1012)
    await reconnecting
    await client.close()
    assert await gateway.connection(1, timeout=0.25) is None
    assert client.connection_state == "closed"


async def test_junk_from_the_gateway_is_reported_and_the_connection_stays(gateway, open_client) -> None:
    client = await open_client()
    reported: list[BaseException] = []
    client.on("error", reported.append)
    connection = await first_connection(gateway)
    await connection.send("{not json")
    await connection.send(
        {"id": None, "ok": False, "error": {"code": "BAD_REQUEST", "message": "taskId: required", "retryable": False}}
    )
    await connection.send({"event": "from-the-future", "x": 1})
    assert (await client.ping())["pong"] is True
    assert isinstance(reported[0], openclaw.UnexpectedFrameError) and reported[0].frame == "{not json"
    assert isinstance(reported[1], errors.BadRequest)
    assert len(reported) == 2


async def test_a_listener_that_raises_is_reported_and_others_still_run(gateway, open_client) -> None:
    client = await open_client()
    reported: list[BaseException] = []
    statuses: list[Any] = []
    client.on("error", reported.append)

    @client.on("task.status")
    def broken(event: Any) -> None:
        raise RuntimeError("listener bug")

    async def collect(event: Any) -> None:
        statuses.append(event)

    client.on("task.status", collect)
    await (await first_connection(gateway)).send({"event": "task.status", "taskId": "t-1", "status": "working"})
    await client.ping()
    await wait_until(lambda: len(statuses) == 1, "the async listener")
    assert [str(error) for error in reported] == ["listener bug"]
    assert statuses == [{"taskId": "t-1", "status": "working"}]


async def test_approval_events_reach_listeners(gateway, open_client) -> None:
    client = await open_client()
    requested: list[Any] = []
    client.on("approval.requested", requested.append)
    event = {"event": "approval.requested", "approvalId": "a-1", "taskId": "t-1", "status": "pending"}
    await (await first_connection(gateway)).send(event)
    await client.ping()
    assert requested == [event]


async def test_async_with_closes_the_client(gateway) -> None:
    async with await openclaw.connect(gateway.url) as client:
        assert client.connection_state == "connected"
    assert client.connection_state == "closed"


async def test_a_gateway_error_from_a_request_carries_every_field(gateway, open_client) -> None:
    client = await open_client()
    connection = await first_connection(gateway)
    pending = asyncio.ensure_future(client.request("coordinator", {"agent": "busy", "task": "work"}))
    frame = await connection.next("coordinator")
    error = {
        "code": "RATE_LIMITED",
        "message": "too many",
        "retryable": True,
        "retryAfterMs": 250,
        "details": {"limit": 5},
    }
    await connection.fail(frame, error)
    with pytest.raises(GatewayError) as raised:
        await pending
    assert raised.value.to_wire() == error


async def test_a_connect_the_caller_stops_waiting_for_leaves_no_connection_open() -> None:
    gateway = await FakeGateway.start(answer=())  # hello is never answered
    try:
        with pytest.raises(TimeoutError):
            await asyncio.wait_for(openclaw.connect(gateway.url), 0.2)
        connection = await first_connection(gateway)
        await asyncio.wait_for(connection.closed.wait(), 2)
        assert await gateway.connection(1, timeout=0.1) is None
    finally:
        await gateway.close()
