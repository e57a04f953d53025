"""Runs the protocol's client conformance vectors (packages/protocol/conformance, whose README is the
format) against this SDK and a scripted gateway on a real WebSocket server. The TypeScript SDK runs the
same files (packages/sdk/src/conformance.test.ts)."""

from __future__ import annotations

import asyncio
import contextlib
import json
from pathlib import Path
from typing import Any

import pytest
from fake_gateway import STEP_TIMEOUT, FakeConnection, FakeGateway

from openclaw import GatewayClient, GatewayError, ReconnectOptions, TaskRequest

VECTORS = Path(__file__).resolve().parents[2] / "protocol" / "conformance"
#: Reconnection delays of the client under test: short, as the README asks (at most 50 ms).
FAST_RECONNECT = ReconnectOptions(initial_delay=0.01, max_delay=0.04)
#: An absent field, as opposed to one that is present and null.
ABSENT = object()


def load_cases() -> list[Any]:
    cases = []
    for path in sorted(VECTORS.glob("*.json")):
        for case in json.loads(path.read_text(encoding="utf-8"))["cases"]:
            cases.append(pytest.param(case, id=f"{path.stem}: {case['name']}"))
    return cases


def matches(expected: Any, actual: Any) -> bool:
    """Whether ``actual`` holds every field of ``expected`` (the README's matching rules)."""
    if expected == "$any":
        return actual is not ABSENT
    if isinstance(expected, dict):
        if not isinstance(actual, dict):
            return False
        return all(
            key not in actual if value == "$absent" else matches(value, actual.get(key, ABSENT))
            for key, value in expected.items()
        )
    return actual is not ABSENT and same_json(expected, actual)


def same_json(a: Any, b: Any) -> bool:
    """JSON equality: ``true`` is not ``1``, and object keys compare in any order."""
    return json.dumps(a, sort_keys=True) == json.dumps(b, sort_keys=True)


def with_id(frame: Any, request_id: Any) -> Any:
    """``"$id"`` anywhere in a frame becomes the id of the last frame the script expected."""
    if frame == "$id":
        return request_id
    if isinstance(frame, list):
        return [with_id(item, request_id) for item in frame]
    if isinstance(frame, dict):
        return {key: with_id(value, request_id) for key, value in frame.items()}
    return frame


def handler_for(behaviour: dict[str, Any]) -> Any:
    """A handler that behaves as the case says (the README's table of behaviours)."""

    async def handler(request: TaskRequest) -> Any:
        if behaviour.get("echo") is True:
            return request.data
        for value in behaviour.get("progress", []):
            request.progress(value)
        raises = behaviour.get("raises")
        if raises is not None:
            if isinstance(raises.get("code"), str):
                raise GatewayError(raises["code"], raises["message"], retryable=raises.get("retryable") is True)
            raise RuntimeError(raises["message"])
        if behaviour.get("context") is True:
            return {
                "taskId": request.task_id,
                "task": request.task,
                "attempt": request.attempt,
                "from": request.sender,
                "deadline": request.deadline,
                "traceparent": request.traceparent,
                "thread": request.thread,
            }
        if behaviour.get("awaitCancel") is True:
            await request.cancelled.wait()
            raise RuntimeError("gave up")
        return behaviour.get("returns")

    return handler


async def perform(client: GatewayClient, do: dict[str, Any], options: dict[str, Any]) -> Any:
    """Does what the case asks of the client (with the case's ``client`` options); returns what it returns."""
    op = do["op"]
    timeout = {"timeout": do["timeoutMs"] / 1000} if "timeoutMs" in do else {}
    if op == "connect":
        return None
    if op == "call":
        return await client.call(
            do["agent"],
            do["task"],
            do.get("data"),
            thread=do.get("thread"),
            cache=do.get("cache"),
            idempotency_key=do.get("idempotencyKey"),
            transparent_retry=do.get("transparentRetry", options.get("transparentRetry", True)),
            **timeout,
        )
    if op == "submit":
        return await client.submit(
            do["agent"],
            do["task"],
            do.get("data"),
            idempotency_key=do.get("idempotencyKey"),
            thread=do.get("thread"),
            **timeout,
        )
    if op == "wait":
        return await client.wait_for_task(do["taskId"])
    if op == "cancel":
        return await client.task_cancel(do["taskId"])
    if op == "stateGet":
        return await client.state.get(do["namespace"], do["key"])
    if op == "stateSet":
        return await client.state.set(
            do["namespace"], do["key"], do["value"], ttl_ms=do.get("ttlMs"), if_version=do.get("ifVersion")
        )
    if op == "memoryAppend":
        return await client.memory.append(do["thread"], do["entries"])
    if op == "memoryRead":
        return await client.memory.read(do["thread"], after=do.get("after"), last=do.get("last"))
    if op == "decide":
        return await client.approval_decide(do["approvalId"], do["decision"], do.get("reason"))
    if op == "serve":
        agent = client.agent(do["agent"], concurrency=do.get("concurrency"))
        for task, behaviour in do["handlers"].items():
            agent.handle(task, handler_for(behaviour))
        # A case about serving checks the frames, not the registration's outcome.
        with contextlib.suppress(GatewayError):
            await agent.register()
        return None
    raise AssertionError(f"unknown op {op}")


class Run:
    """One case in progress: the operation and how it ended."""

    def __init__(self) -> None:
        self.task: asyncio.Task[None] | None = None
        self.value: Any = ABSENT
        self.error: BaseException | None = None

    @property
    def ended(self) -> bool:
        return self.value is not ABSENT or self.error is not None

    def begin(self, client: GatewayClient, do: dict[str, Any], options: dict[str, Any]) -> None:
        async def record() -> None:
            try:
                self.value = await perform(client, do, options)
            except Exception as error:  # the case's outcome says what was expected
                self.error = error

        self.task = asyncio.ensure_future(record())

    async def settle(self, timeout: float) -> None:
        if self.task is not None:
            await asyncio.wait({self.task}, timeout=timeout)


async def play(step: dict[str, Any], gateway: FakeGateway, state: dict[str, Any], run: Run) -> None:
    """Plays one step of the script; ``state`` holds the current connection, how many were seen, and the last id."""
    connection: FakeConnection = state["connection"]
    if "expect" in step:
        frame = await connection.next()
        assert frame is not None, "the client sent nothing"
        assert matches(step["expect"], frame), f"the client sent {json.dumps(frame)}"
        state["last_id"] = frame.get("id")
    elif "send" in step:
        await connection.send(with_id(step["send"], state["last_id"]))
    elif "sendRaw" in step:
        await connection.send(str(step["sendRaw"]))
    elif "close" in step:
        await connection.close(int(step["close"]), str(step.get("reason", "")))
    elif "drop" in step:
        connection.drop()
    elif "expectReconnect" in step:
        following = await gateway.connection(state["seen"])
        assert following is not None, "the client did not connect again"
        state["connection"] = following
        state["seen"] += 1
    elif "expectNoReconnect" in step:
        following = await gateway.connection(state["seen"], timeout=step["withinMs"] / 1000)
        assert following is None, "the client connected again"
    elif "expectSilence" in step:
        frame = await connection.next(timeout=step["expectSilence"] / 1000)
        assert frame is None, f"the client sent {json.dumps(frame)}"
    elif "settled" in step:
        await run.settle(STEP_TIMEOUT)
        assert run.ended, "the operation has not ended"
    else:
        raise AssertionError("unknown step")


@pytest.mark.parametrize("case", load_cases())
async def test_conformance(case: dict[str, Any]) -> None:
    auto_hello = case.get("hello", "auto") == "auto"
    gateway = await FakeGateway.start(answer=("hello",) if auto_hello else ())
    options = case.get("client", {})
    client = GatewayClient(
        gateway.url,
        api_key=options.get("apiKey"),
        token=options.get("token"),
        reconnect=False if options.get("reconnect") is False else FAST_RECONNECT,
    )
    client.on("error", lambda error: None)
    run = Run()
    starting = asyncio.ensure_future(client.start())
    try:
        connection = await gateway.connection(0)
        assert connection is not None, "the client did not connect"
        if auto_hello:
            await starting
            run.begin(client, case["do"], options)
        else:

            def begin_once_started(started: asyncio.Future[Any]) -> None:
                if not started.cancelled() and started.exception() is None:
                    run.begin(client, case["do"], options)

            starting.add_done_callback(begin_once_started)
        state: dict[str, Any] = {"connection": connection, "seen": 1, "last_id": None}
        for index, step in enumerate(case["script"], start=1):
            try:
                await play(step, gateway, state, run)
            except AssertionError as failure:
                raise AssertionError(f"step {index} {json.dumps(step)}: {failure}") from None

        expected = case.get("outcome")
        if expected is None:
            return
        if expected.get("pending"):
            assert not run.ended, f"the operation ended: {run.value if run.error is None else run.error!r}"
            return
        await run.settle(STEP_TIMEOUT)
        assert run.ended, "the operation has not ended"
        if "raises" in expected:
            assert isinstance(run.error, GatewayError), f"expected an error, got {run.value!r} / {run.error!r}"
            fields = {"code": run.error.code, "message": run.error.message, "retryable": run.error.retryable}
            if run.error.retry_after_ms is not None:
                fields["retryAfterMs"] = run.error.retry_after_ms
            if run.error.details is not None:
                fields["details"] = run.error.details
            assert matches(expected["raises"], fields), f"raised {fields}, expected {expected['raises']}"
        else:
            if run.error is not None:
                raise run.error
            assert same_json(json.loads(json.dumps(run.value)), expected["returns"]), f"returned {run.value!r}"
    finally:
        for task in (starting, run.task):
            if task is not None and not task.done():
                task.cancel()
        await client.close()
        await gateway.close()
