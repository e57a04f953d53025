"""Waiting for async tasks across reconnections, and shared state and memory."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from conftest import next_event, wait_until
from fake_gateway import FakeConnection, FakeGateway

from openclaw import errors


async def answer_subscriptions(frame: dict[str, Any], connection: FakeConnection) -> None:
    await connection.ok(frame, {"taskId": frame["taskId"], "status": "working"})


async def test_wait_for_task_resubscribes_after_a_reconnection_and_reports_each_progress_once(
    gateway: FakeGateway, open_client: Any
) -> None:
    client = await open_client()
    gateway.script("task.subscribe", answer_subscriptions)
    progress: list[Any] = []
    statuses: list[str] = []
    outcome = asyncio.ensure_future(
        client.wait_for_task(
            "t-9", on_progress=progress.append, on_status=lambda event: statuses.append(event["status"])
        )
    )
    first = await gateway.connection(0)
    assert first is not None
    await wait_until(lambda: len(first.all("task.subscribe")) == 1, "the subscription")
    assert first.all("task.subscribe")[0]["after"] == "0-0"
    await first.send({"event": "task.status", "taskId": "t-9", "status": "working", "cursor": "1-0"})
    await first.send({"event": "task.progress", "taskId": "t-9", "progress": {"pct": 40}, "cursor": "2-0"})
    # Progress of someone's sync call (it carries a request id) is not this task's subscription.
    await first.send({"event": "task.progress", "id": 77, "taskId": "t-9", "progress": "sync"})
    await client.ping()
    connected = next_event(client, "connected")
    first.drop()
    await asyncio.wait_for(connected, 2)
    second = await gateway.connection(1)
    assert second is not None
    await wait_until(lambda: len(second.all("task.subscribe")) == 1, "the subscription again")
    assert second.all("task.subscribe")[0]["after"] == "2-0"
    # The replay after the cursor may repeat what was seen; it is reported once.
    await second.send({"event": "task.progress", "taskId": "t-9", "progress": {"pct": 40}, "cursor": "2-0"})
    await second.send({"event": "task.progress", "taskId": "t-9", "progress": {"pct": 80}, "cursor": "3-0"})
    await second.send({"event": "task.status", "taskId": "t-9", "status": "completed", "output": 12, "cursor": "4-0"})
    assert await asyncio.wait_for(outcome, 2) == {"taskId": "t-9", "status": "completed", "output": 12}
    assert progress == [{"pct": 40}, {"pct": 80}]
    assert statuses == ["working", "completed"]


async def test_many_waits_each_end_with_their_own_task(gateway: FakeGateway, open_client: Any) -> None:
    client = await open_client()
    gateway.script("task.subscribe", answer_subscriptions)
    ids = [f"t-{number}" for number in range(20)]
    outcomes = [asyncio.ensure_future(client.wait_for_task(task_id)) for task_id in ids]
    connection = await gateway.connection(0)
    assert connection is not None
    await wait_until(lambda: len(connection.all("task.subscribe")) == 20, "20 subscriptions")
    for number, task_id in enumerate(ids):
        status = "completed" if number % 2 == 0 else "failed"
        await connection.send({"event": "task.status", "taskId": task_id, "status": status, "cursor": f"{number}-1"})
    ended = await asyncio.wait_for(asyncio.gather(*outcomes), 2)
    assert [outcome["status"] for outcome in ended] == ["completed", "failed"] * 10
    assert [outcome["taskId"] for outcome in ended] == ids


async def test_a_wait_ends_with_unavailable_when_the_client_closes(gateway: FakeGateway, open_client: Any) -> None:
    client = await open_client()
    gateway.script("task.subscribe", answer_subscriptions)
    outcome = asyncio.ensure_future(client.wait_for_task("t-9"))
    connection = await gateway.connection(0)
    assert connection is not None
    await wait_until(lambda: len(connection.all("task.subscribe")) == 1, "the subscription")
    await client.close()
    with pytest.raises(errors.Unavailable):
        await asyncio.wait_for(outcome, 2)


async def test_state_watch_is_sent_again_after_a_reconnection(gateway: FakeGateway, open_client: Any) -> None:
    client = await open_client()
    gateway.script("state.watch", lambda frame, c: c.ok(frame, {"watching": True}))
    gateway.script("state.unwatch", lambda frame, c: c.ok(frame, {"watching": False, "ended": True}))
    changes: list[Any] = []
    watch = await client.state.watch("orders", changes.append, prefix="o-")
    first = await gateway.connection(0)
    assert first is not None
    assert first.all("state.watch")[0]["namespace"] == "orders" and first.all("state.watch")[0]["prefix"] == "o-"
    connected = next_event(client, "connected")
    await first.close(1012, "restart")
    await asyncio.wait_for(connected, 2)
    second = await gateway.connection(1)
    assert second is not None
    await wait_until(lambda: len(second.all("state.watch")) == 1, "the watch sent again")
    assert {key: second.all("state.watch")[0][key] for key in ("namespace", "prefix")} == {
        "namespace": "orders",
        "prefix": "o-",
    }
    change = {"event": "state.changed", "namespace": "orders", "key": "o-1", "version": 2, "op": "set"}
    await second.send(change)
    await second.send({**change, "key": "customers-1"})  # outside the prefix
    await client.ping()
    assert changes == [{"namespace": "orders", "key": "o-1", "version": 2, "op": "set"}]
    await watch.close()
    assert second.all("state.unwatch")[0]["namespace"] == "orders"


async def test_state_keys_iterates_over_every_page(gateway: FakeGateway, open_client: Any) -> None:
    client = await open_client()
    pages = {
        None: ({"items": [{"key": "a", "version": 1, "updatedAt": 1}], "cursor": "c1"}),
        "c1": {"items": [{"key": "b", "version": 3, "updatedAt": 2}]},
    }
    gateway.script("state.list", lambda frame, c: c.ok(frame, pages[frame.get("cursor")]))
    keys = [item["key"] async for item in client.state.keys("orders", prefix="")]
    assert keys == ["a", "b"]


async def test_state_and_memory_requests(gateway: FakeGateway, open_client: Any) -> None:
    client = await open_client()
    gateway.script("state.delete", lambda frame, c: c.ok(frame, {"deleted": True}))
    gateway.script("memory.clear", lambda frame, c: c.ok(frame, {"cleared": 3}))
    gateway.script("memory.append", lambda frame, c: c.ok(frame, {"thread": frame["thread"], "seq": 7}))
    assert await client.state.delete("orders", "o-1", if_version=2) is True
    assert await client.memory.append("case-7", [{"role": "a", "content": 1}, {"role": "b", "content": 2}]) == 7
    assert await client.memory.clear("case-7") == 3
    connection = await gateway.connection(0)
    assert connection is not None
    assert connection.all("state.delete")[0]["ifVersion"] == 2
    assert len(connection.all("memory.append")[0]["entries"]) == 2
