"""A scripted gateway on a real ``websockets`` server (127.0.0.1, port 0), for the SDK's tests.

It records every frame a client sends, answers the actions it is told to answer by itself (``hello``,
``register`` and ``ping`` like a gateway, by default), and leaves the rest to the test. It runs on the
``websockets`` installed, legacy (10.x) or new (14+) server API alike.
"""

from __future__ import annotations

import asyncio
import inspect
import json
from collections.abc import Awaitable, Callable, Iterable
from http import HTTPStatus
from typing import Any

import websockets
from websockets.datastructures import Headers
from websockets.exceptions import ConnectionClosed

#: Whether ``websockets.serve`` is the new asyncio implementation (14+), whose handler takes the connection only.
_NEW_SERVER_API = "handler" in inspect.signature(websockets.serve).parameters
#: How long a test waits for something it expects before failing, in seconds.
STEP_TIMEOUT = 2.0

Frame = dict[str, Any]
#: Answers one action by itself, e.g. ``hello``.
ActionScript = Callable[[Frame, "FakeConnection"], Awaitable[None]]


def hello_result(session_id: str = "session-1", heartbeat_ms: int = 0, max_frame_bytes: int = 1_048_576) -> Frame:
    return {
        "protocol": 1,
        "sessionId": session_id,
        "replica": "replica-a",
        "principal": {"id": "anonymous", "tenant": "default", "roles": ["admin"]},
        "limits": {"maxFrameBytes": max_frame_bytes, "heartbeatMs": heartbeat_ms},
        "features": ["state", "memory", "cache"],
    }


class FakeConnection:
    """One client connection: the frames it sent, and ways to answer it."""

    def __init__(self, websocket: Any, headers: Headers) -> None:
        self.websocket = websocket
        self.headers = headers
        self.frames: list[Frame] = []
        self._taken: set[int] = set()
        self._arrived = asyncio.Condition()
        self.closed = asyncio.Event()

    async def next(self, action: str | None = None, timeout: float = STEP_TIMEOUT) -> Frame | None:
        """The next frame (of ``action``) not yet returned nor answered by the gateway itself, waiting
        up to ``timeout`` s for it; ``None`` if none came."""

        def first_untaken() -> int | None:
            for index, frame in enumerate(self.frames):
                if index not in self._taken and (action is None or frame.get("action") == action):
                    return index
            return None

        async with self._arrived:
            try:
                await asyncio.wait_for(self._arrived.wait_for(lambda: first_untaken() is not None), timeout)
            except TimeoutError:
                return None
            index = first_untaken()
            assert index is not None
            self._taken.add(index)
            return self.frames[index]

    def all(self, action: str) -> list[Frame]:
        """Every frame of ``action`` received so far."""
        return [frame for frame in self.frames if frame.get("action") == action]

    async def receive(self, frame: Frame, answered: bool) -> None:
        async with self._arrived:
            if answered:
                self._taken.add(len(self.frames))
            self.frames.append(frame)
            self._arrived.notify_all()

    async def send(self, frame: Frame | str) -> None:
        await self.websocket.send(frame if isinstance(frame, str) else json.dumps(frame))

    async def ok(self, frame: Frame, result: Any) -> None:
        await self.send({"id": frame.get("id"), "ok": True, "result": result})

    async def fail(self, frame: Frame, error: Frame) -> None:
        await self.send({"id": frame.get("id"), "ok": False, "error": error})

    async def close(self, code: int, reason: str = "") -> None:
        await self.websocket.close(code, reason)

    def drop(self) -> None:
        """Loses the connection without a close frame (the client sees 1006)."""
        self.websocket.transport.abort()


class FakeGateway:
    """The scripted gateway. ``refusals`` are upgrades to refuse, in order: ``(status, json_error_or_None,
    extra_headers)``; with ``api_key`` set, any other credential is refused with HTTP 401."""

    def __init__(self, api_key: str | None, answer: Iterable[str], heartbeat_ms: int, max_frame_bytes: int) -> None:
        self.api_key = api_key
        self.connections: list[FakeConnection] = []
        self.refusals: list[tuple[int, Frame | None, dict[str, str]]] = []
        #: Upgrade requests received, refused ones included.
        self.upgrades = 0
        self._new_connection = asyncio.Condition()
        self._server: Any = None
        self._registrations = 0
        self.url = ""
        defaults: dict[str, ActionScript] = {
            "hello": self._answer_hello,
            "register": self._answer_register,
            "ping": lambda frame, connection: connection.ok(frame, {"pong": True, "time": 1_700_000_000_000}),
        }
        self.scripts: dict[str, ActionScript] = {action: defaults[action] for action in answer}
        self._heartbeat_ms = heartbeat_ms
        self._max_frame_bytes = max_frame_bytes

    @classmethod
    async def start(
        cls,
        *,
        api_key: str | None = None,
        answer: Iterable[str] = ("hello", "register", "ping"),
        heartbeat_ms: int = 0,
        max_frame_bytes: int = 1_048_576,
    ) -> FakeGateway:
        gateway = cls(api_key, answer, heartbeat_ms, max_frame_bytes)
        if _NEW_SERVER_API:
            gateway._server = await websockets.serve(
                gateway._handle, "127.0.0.1", 0, process_request=gateway._refuse_new, compression=None
            )
        else:
            gateway._server = await websockets.serve(
                gateway._handle, "127.0.0.1", 0, process_request=gateway._refuse_legacy, compression=None
            )
        port = next(iter(gateway._server.sockets)).getsockname()[1]
        gateway.url = f"ws://127.0.0.1:{port}"
        return gateway

    def script(self, action: str, answer: ActionScript) -> None:
        """Answers ``action`` by itself from now on."""
        self.scripts[action] = answer

    async def connection(self, index: int, timeout: float = STEP_TIMEOUT) -> FakeConnection | None:
        """Connection number ``index`` (0-based), waiting up to ``timeout`` s for it; ``None`` if it never came."""
        async with self._new_connection:
            try:
                await asyncio.wait_for(self._new_connection.wait_for(lambda: len(self.connections) > index), timeout)
            except TimeoutError:
                return None
            return self.connections[index]

    async def close(self) -> None:
        for connection in self.connections:
            connection.drop()
        self._server.close()
        await self._server.wait_closed()

    async def _handle(self, websocket: Any) -> None:
        headers = websocket.request.headers if _NEW_SERVER_API else websocket.request_headers
        connection = FakeConnection(websocket, headers)
        async with self._new_connection:
            self.connections.append(connection)
            self._new_connection.notify_all()
        try:
            async for message in websocket:
                frame = json.loads(message)
                script = self.scripts.get(frame.get("action"))
                await connection.receive(frame, answered=script is not None)
                if script is not None:
                    await script(frame, connection)
        except ConnectionClosed:
            pass
        finally:
            connection.closed.set()

    async def _answer_hello(self, frame: Frame, connection: FakeConnection) -> None:
        session = f"session-{self.connections.index(connection) + 1}"
        await connection.ok(frame, hello_result(session, self._heartbeat_ms, self._max_frame_bytes))

    async def _answer_register(self, frame: Frame, connection: FakeConnection) -> None:
        self._registrations += 1
        await connection.ok(frame, {"agent": frame.get("name"), "instanceId": f"instance-{self._registrations}"})

    def _refusal(self, headers: Headers) -> tuple[int, bytes, list[tuple[str, str]]] | None:
        """The HTTP refusal of this upgrade, if it is to be refused."""
        self.upgrades += 1
        if self.refusals:
            status, error, extra = self.refusals.pop(0)
            body = json.dumps({"error": error}).encode() if error is not None else b"<html>refused</html>"
            return status, body, list(extra.items())
        if self.api_key is not None:
            authorization = headers.get("Authorization", "")
            credential = (
                authorization[len("Bearer ") :] if authorization.startswith("Bearer ") else headers.get("X-API-Key")
            )
            if credential != self.api_key:
                error = {"code": "UNAUTHENTICATED", "message": "missing or invalid credentials", "retryable": False}
                return 401, json.dumps({"error": error}).encode(), []
        return None

    async def _refuse_legacy(self, path: str, headers: Headers) -> Any:
        refusal = self._refusal(headers)
        if refusal is None:
            return None
        status, body, extra = refusal
        return HTTPStatus(status), [*_response_headers(body), *extra], body

    async def _refuse_new(self, connection: Any, request: Any) -> Any:
        from websockets.http11 import Response

        refusal = self._refusal(request.headers)
        if refusal is None:
            return None
        status, body, extra = refusal
        return Response(status, HTTPStatus(status).phrase, Headers([*_response_headers(body), *extra]), body)


def _response_headers(body: bytes) -> list[tuple[str, str]]:
    content_type = "application/json" if body.startswith(b"{") else "text/html"
    return [("Content-Type", content_type), ("Content-Length", str(len(body))), ("Connection", "close")]
