"""Fixtures of the SDK's tests: a scripted gateway per test, clients that close themselves, and waits on
conditions rather than sleeps."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import pytest
from fake_gateway import FakeGateway

import openclaw

#: Short reconnection delays keep every reconnection test well under a second.
FAST = openclaw.ReconnectOptions(initial_delay=0.01, max_delay=0.04)


@pytest.fixture
async def gateway() -> AsyncIterator[FakeGateway]:
    started = await FakeGateway.start()
    yield started
    await started.close()


@pytest.fixture
async def open_client(gateway: FakeGateway) -> AsyncIterator[Callable[..., Awaitable[openclaw.GatewayClient]]]:
    """Connects clients to the test's gateway (fast reconnection unless told otherwise); closes them after."""
    clients: list[openclaw.GatewayClient] = []

    async def open_one(**options: Any) -> openclaw.GatewayClient:
        options.setdefault("reconnect", FAST)
        client = await openclaw.connect(options.pop("url", gateway.url), **options)
        clients.append(client)
        return client

    yield open_one
    for client in clients:
        await client.close()


async def wait_until(condition: Callable[[], bool], what: str, timeout: float = 2.0) -> None:
    """Returns once ``condition()`` holds, failing with ``what`` after ``timeout`` seconds."""
    loop = asyncio.get_running_loop()
    until = loop.time() + timeout
    while not condition():
        if loop.time() > until:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        await asyncio.sleep(0.005)


def next_event(client: openclaw.GatewayClient, name: str) -> asyncio.Future[Any]:
    """The payload of the next ``name`` event of ``client``."""
    future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()

    def listener(payload: Any) -> None:
        client.off(name, listener)  # type: ignore[arg-type]
        if not future.done():
            future.set_result(payload)

    client.on(name, listener)  # type: ignore[arg-type]
    return future
