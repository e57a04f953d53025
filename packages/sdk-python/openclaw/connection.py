"""The WebSocket of a client and its life: opening with the credentials, the handshake (``hello``,
re-registration), reading frames, reconnection with backoff, and closing."""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Callable
from typing import Any, Protocol

from websockets.exceptions import ConnectionClosed

from .errors import GatewayError, UnexpectedFrameError
from .events import ClientEventSink, ClosedInfo, ConnectedInfo, DisconnectedInfo, ReconnectingInfo
from .options import ClientOptions
from .types import ConnectionState, HelloResult
from .version import SDK_VERSION
from .websocket_transport import WebSocket, abort, close_of, open_websocket

logger = logging.getLogger("openclaw.connection")

#: The protocol version this SDK speaks.
PROTOCOL_VERSION = 1
#: Close code of credentials revoked or expired: never reconnect after it.
POLICY_CLOSE = 1008
#: Close code of an overloaded gateway (or a slow consumer): reconnect, but back off harder.
TRY_AGAIN_LATER_CLOSE = 1013
#: A connection that lasted less than this (seconds) before it dropped was flapping: the backoff goes on.
STABLE_CONNECTION = 10.0
#: After 1013, reconnection starts this many steps up the backoff.
OVERLOAD_BACKOFF_STEPS = 3


class ConnectionHooks(Protocol):
    """What a :class:`GatewayConnection` asks of the client it belongs to."""

    async def request(self, action: str, params: dict[str, Any]) -> Any:
        """Sends a request on the connection being set up (its ``hello``) and returns the result."""

    async def reregister(self) -> None:
        """On a reconnection, after ``hello``: registers the agents again; raises only for a refusal a
        retry can fix."""

    def on_response(self, frame: dict[str, Any], text: str) -> None:
        """A response frame arrived (a JSON object with ``ok``)."""

    def on_event(self, frame: dict[str, Any], text: str) -> None:
        """An event frame arrived (a JSON object with ``event``)."""

    def on_connected(self) -> None:
        """The connection is established, just before ``connected`` is emitted."""

    def on_socket_closed(self, code: int, reason: str, by_client: bool) -> None:
        """The socket closed (before ``disconnected``): what was in flight on it ends."""

    def on_finished(self) -> None:
        """The connection is closed for good (before ``closed``): what still waits for it ends."""


class _Socket:
    """One open WebSocket, its reader, and its outbox: frames go out in the order they were sent, and
    frames still queued when the socket closes go nowhere (never on the next connection)."""

    def __init__(self, websocket: WebSocket) -> None:
        self.websocket = websocket
        self.outbox: asyncio.Queue[tuple[str, Callable[[BaseException], None] | None]] = asyncio.Queue()
        self.open = True
        self.reader: asyncio.Task[None] | None = None
        self.writer: asyncio.Task[None] | None = None


class GatewayConnection:
    """The connection of a client. States: ``idle`` until :meth:`start`, ``connecting`` during the first
    connection, ``connected``, ``reconnecting`` from an unexpected close until the next connection is
    established, and ``closed`` for good (after :meth:`close`, a failed first connection, a close it must
    not reconnect after, refused credentials, or exhausted attempts)."""

    def __init__(self, options: ClientOptions, hooks: ConnectionHooks, events: ClientEventSink) -> None:
        self._options = options
        self._hooks = hooks
        self._events = events
        self.state: ConnectionState = "idle"
        #: The ``hello`` result of the current connection.
        self.session: HelloResult | None = None
        self._socket: _Socket | None = None
        #: Whether the current socket finished its handshake and ``connected`` was emitted for it.
        self._established = False
        self._last_close: tuple[int, str] | None = None
        self._reconnecting: asyncio.Task[None] | None = None
        self._closing: asyncio.Task[None] | None = None
        self._finished = asyncio.Event()
        #: Set while connected or closed for good: what waits for the connection to come back waits on it.
        self._settled = asyncio.Event()
        self._connected_at = 0.0
        #: The backoff step at which the last reconnection succeeded.
        self._last_reconnect_step = -1

    @property
    def is_open(self) -> bool:
        """Whether a socket is open to send on (during its handshake too)."""
        return self._socket is not None and self._socket.open

    async def start(self) -> None:
        """Opens the first connection; if it fails, the connection is closed for good and the error raised."""
        try:
            await self._establish(reconnecting=False)
        except BaseException:
            self._finish("the first connection failed")
            raise

    async def close(self) -> None:
        """Closes for good: stops reconnecting and closes the socket. Idempotent."""
        if self._closing is None:
            self._closing = asyncio.get_running_loop().create_task(self._shutdown())
        await asyncio.shield(self._closing)

    async def wait_closed(self) -> None:
        """Returns once the connection is closed for good."""
        await self._finished.wait()

    async def wait_settled(self) -> None:
        """Returns once the connection is established again, or closed for good."""
        await self._settled.wait()

    def send(self, text: str, on_error: Callable[[BaseException], None] | None = None) -> bool:
        """Queues a text frame on the open socket; ``on_error(exception)`` hears of a frame that could not go out.

        Returns False, sending nothing, when no socket is open.
        """
        socket = self._socket
        if socket is None or not socket.open:
            return False
        socket.outbox.put_nowait((text, on_error))
        return True

    async def _establish(self, reconnecting: bool) -> None:
        """Opens a socket and runs the handshake (hello, then re-registration); returns once ``connected``
        is emitted."""
        if self._closing is not None:
            raise GatewayError("UNAVAILABLE", "the client was closed", retryable=False)
        self.state = "reconnecting" if reconnecting else "connecting"
        headers = {}
        if self._options.token is not None:
            headers["Authorization"] = f"Bearer {self._options.token}"
        if self._options.api_key is not None:
            headers["X-API-Key"] = self._options.api_key
        websocket = await open_websocket(self._options.url, headers, self._options.connect_timeout)
        if self._closing is not None:
            abort(websocket)
            raise GatewayError("UNAVAILABLE", "the client was closed", retryable=False)
        socket = self._attach(websocket)
        try:
            if self._options.hello:
                # Set before re-registration, whose frames are held to this connection's limits.
                self.session = _hello_result(
                    await self._hooks.request(
                        "hello",
                        {
                            "protocol": PROTOCOL_VERSION,
                            "client": {"name": self._options.client_name, "version": SDK_VERSION},
                        },
                    )
                )
            if reconnecting:
                await self._hooks.reregister()
            if self._socket is not socket or not socket.open:
                raise GatewayError("UNAVAILABLE", "the connection closed during its handshake", retryable=True)
        except BaseException as error:
            abort(websocket)
            last_close = self._last_close
            if isinstance(error, Exception) and last_close is not None and last_close[0] == POLICY_CLOSE:
                raise GatewayError(
                    "UNAUTHENTICATED",
                    f"the gateway closed the connection (1008 {last_close[1]})",
                    retryable=False,
                ) from error
            raise
        self._established = True
        self.state = "connected"
        self._connected_at = asyncio.get_running_loop().time()
        self._settled.set()
        logger.info("connected to %s", self.session["replica"] if self.session else "the gateway")
        self._hooks.on_connected()
        self._events.emit("connected", ConnectedInfo(self.session, reconnecting))

    def _attach(self, websocket: WebSocket) -> _Socket:
        socket = _Socket(websocket)
        self._socket = socket
        self._established = False
        self._last_close = None
        loop = asyncio.get_running_loop()
        socket.reader = loop.create_task(self._read(socket))
        socket.writer = loop.create_task(self._write(socket))
        return socket

    async def _read(self, socket: _Socket) -> None:
        """Reads frames until the socket closes, then ends what was in flight on it."""
        code, reason = 1006, ""
        try:
            while True:
                message = await socket.websocket.recv()
                self._on_message(message)
        except ConnectionClosed as closed:
            code, reason = close_of(closed)
        except Exception as error:  # a socket fault is a lost connection, never a crash
            self._events.report_error(error)
            abort(socket.websocket)
        finally:
            self._on_socket_closed(socket, code, reason)

    async def _write(self, socket: _Socket) -> None:
        """Sends queued frames one after another, so they leave in the order they were sent."""
        while True:
            text, on_error = await socket.outbox.get()
            try:
                await socket.websocket.send(text)
            except Exception as error:  # reported to the frame's sender
                if on_error is not None:
                    on_error(error)

    def _on_message(self, message: str | bytes) -> None:
        """Decodes a frame and hands it on by kind; what cannot be used is reported, and the connection stays."""
        if isinstance(message, bytes):
            text = message.decode("utf-8", errors="replace")
            self._events.report_error(UnexpectedFrameError("the gateway sent a binary frame", text))
            return
        try:
            frame = json.loads(message)
        except ValueError:
            self._events.report_error(UnexpectedFrameError("the gateway sent a frame that is not JSON", message))
            return
        if not isinstance(frame, dict):
            self._events.report_error(
                UnexpectedFrameError("the gateway sent a frame that is not a JSON object", message)
            )
        elif "ok" in frame:
            self._hooks.on_response(frame, message)
        elif "event" in frame:
            self._hooks.on_event(frame, message)
        else:
            self._events.report_error(
                UnexpectedFrameError("the gateway sent a frame that is neither a response nor an event", message)
            )

    def _on_socket_closed(self, socket: _Socket, code: int, reason: str) -> None:
        socket.open = False
        if socket.writer is not None:
            socket.writer.cancel()
        if self._socket is not socket:
            return
        self._socket = None
        self._last_close = (code, reason)
        was_established = self._established
        self._established = False
        by_client = self._closing is not None
        self._hooks.on_socket_closed(code, reason, by_client)
        # A connection that dies during its handshake is _establish()'s to report.
        if not was_established:
            return
        self._settled.clear()
        will_reconnect = not by_client and self._options.reconnect is not None and code != POLICY_CLOSE
        logger.info("disconnected (%s %s); %s", code, reason, "reconnecting" if will_reconnect else "not reconnecting")
        self._events.emit("disconnected", DisconnectedInfo(code, reason, will_reconnect))
        if will_reconnect:
            self._reconnecting = asyncio.get_running_loop().create_task(self._reconnect(code))
        elif not by_client:
            self._finish(
                f"the connection closed ({code}) and reconnection is off"
                if self._options.reconnect is None
                else f"the gateway closed the connection with {code}"
            )

    async def _reconnect(self, close_code: int) -> None:
        """Reconnects with exponential backoff and full jitter, backing off harder when the gateway is
        overloaded: after 1013 it starts three steps up with at least half the step's cap; after a refused
        upgrade that names a ``retryAfterMs`` it waits that long, plus the usual jitter."""
        policy = self._options.reconnect
        assert policy is not None
        self.state = "reconnecting"
        loop = asyncio.get_running_loop()
        # A connection that dropped soon after it was made does not start the backoff over.
        flapping = loop.time() - self._connected_at < STABLE_CONNECTION
        carried = self._last_reconnect_step + 1 if flapping else 0
        overload = OVERLOAD_BACKOFF_STEPS if close_code == TRY_AGAIN_LATER_CLOSE else 0
        start = max(carried, overload)
        last_error: BaseException | None = None
        attempt = 0
        while policy.max_attempts is None or attempt < policy.max_attempts:
            step = attempt + start
            retry_after = last_error.retry_after_ms if isinstance(last_error, GatewayError) else None
            if retry_after is not None:
                delay = retry_after / 1000 + policy.backoff.delay(step)
            elif overload:
                delay = policy.backoff.cap(step) / 2 + policy.backoff.delay(step) / 2
            else:
                delay = policy.backoff.delay(step)
            attempt += 1
            logger.info("reconnecting in %.3f s (attempt %d)", delay, attempt)
            self._events.emit("reconnecting", ReconnectingInfo(attempt, delay, last_error))
            await asyncio.sleep(delay)
            try:
                await self._establish(reconnecting=True)
                self._last_reconnect_step = step
                return
            except GatewayError as error:
                # Closed meanwhile: a cancellation can be lost inside the library's own timeouts, so the
                # loop checks for itself rather than count on being cancelled.
                if self._closing is not None:
                    return
                last_error = error
                if error.code in ("UNAUTHENTICATED", "FORBIDDEN"):
                    self._events.report_error(error)
                    self._finish(f"the gateway refused the credentials ({error.code})")
                    return
            except Exception as error:  # any failure of an attempt is retried
                if self._closing is not None:
                    return
                last_error = error
        self._events.report_error(
            GatewayError("UNAVAILABLE", f"gave up reconnecting after {policy.max_attempts} attempts", retryable=True)
        )
        self._finish(f"gave up reconnecting after {policy.max_attempts} attempts")

    async def _shutdown(self) -> None:
        reconnecting = self._reconnecting
        if reconnecting is not None and not reconnecting.done():
            reconnecting.cancel()
            await asyncio.gather(reconnecting, return_exceptions=True)
        socket = self._socket
        if socket is not None:
            try:
                await socket.websocket.close(1000, "client closing")
            except Exception:  # a socket that will not close cleanly is dropped
                abort(socket.websocket)
            if socket.reader is not None:
                await asyncio.gather(socket.reader, return_exceptions=True)
        self._finish("closed by the client")

    def _finish(self, reason: str) -> None:
        """The client will not connect again: emits ``closed`` once."""
        self.state = "closed"
        if self._finished.is_set():
            return
        self._finished.set()
        self._settled.set()
        logger.info("closed: %s", reason)
        self._hooks.on_finished()
        self._events.emit("closed", ClosedInfo(self._last_close[0] if self._last_close else None, reason))


def _hello_result(value: Any) -> HelloResult:
    """The ``hello`` result, checked: one that does not match the protocol fails the handshake."""
    if (
        not isinstance(value, dict)
        or value.get("protocol") != PROTOCOL_VERSION
        or not isinstance(value.get("limits"), dict)
        or not isinstance(value.get("principal"), dict)
    ):
        raise GatewayError("INTERNAL", "the gateway sent a malformed 'hello' result", retryable=False)
    return value  # type: ignore[return-value]
