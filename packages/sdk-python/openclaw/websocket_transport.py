"""The ``websockets`` library behind the client, across the versions it supports (10.4 and later).

The one difference callers of ``websockets.connect`` meet is the name of its header argument:
``extra_headers`` up to the legacy implementation, ``additional_headers`` from the new asyncio one
(the default from 14.0). Refused upgrades differ too: the new implementation keeps the response body
(the gateway's JSON error), the legacy one only the status and headers.
"""

from __future__ import annotations

import asyncio
import inspect
import json
import time
from collections.abc import Mapping
from email.utils import parsedate_to_datetime
from typing import Any, Protocol
from urllib.parse import urlsplit

import websockets
from websockets.exceptions import ConnectionClosed, WebSocketException

from .errors import GatewayError

#: How long closing waits for the gateway's close frame before dropping the socket, in seconds.
CLOSE_HANDSHAKE_TIMEOUT = 1.0
#: The longest ``Retry-After`` honoured, so a bad header cannot park a client for hours.
MAX_RETRY_AFTER_MS = 5 * 60_000

_HEADERS_ARGUMENT = (
    "additional_headers"
    if "additional_headers" in inspect.signature(websockets.connect).parameters
    else "extra_headers"
)


class WebSocket(Protocol):
    """What the client uses of a ``websockets`` connection (legacy or new implementation)."""

    @property
    def transport(self) -> asyncio.BaseTransport: ...

    async def send(self, message: str) -> None: ...

    async def recv(self) -> str | bytes: ...

    async def close(self, code: int = 1000, reason: str = "") -> None: ...


async def open_websocket(url: str, headers: Mapping[str, str], open_timeout: float) -> WebSocket:
    """Opens a WebSocket to the gateway, or raises a :class:`GatewayError`: the gateway's refusal
    (``UNAUTHENTICATED`` for HTTP 401, ``FORBIDDEN`` for 403, ...), else ``UNAVAILABLE`` (retryable)."""
    options: dict[str, Any] = {
        _HEADERS_ARGUMENT: dict(headers),
        "open_timeout": open_timeout,
        "close_timeout": CLOSE_HANDSHAKE_TIMEOUT,
        # The gateway bounds what it forwards; a result larger than the library's 1 MiB default is legitimate.
        "max_size": None,
        # The gateway does not offer permessage-deflate.
        "compression": None,
    }
    try:
        return await websockets.connect(url, **options)
    except WebSocketException as error:
        refusal = refusal_error(error)
        if refusal is not None:
            raise refusal from None
        raise _unreachable(url, str(error)) from error
    except (TimeoutError, OSError, EOFError) as error:
        why = "the opening handshake timed out" if isinstance(error, asyncio.TimeoutError) else str(error)
        raise _unreachable(url, why or type(error).__name__) from error


def close_of(error: ConnectionClosed) -> tuple[int, str]:
    """The close code and reason of a closed connection; 1006 when no close frame came."""
    received = error.rcvd
    if received is None:
        return 1006, ""
    return received.code, received.reason


def abort(socket: WebSocket) -> None:
    """Drops the connection at once, without a closing handshake."""
    transport = getattr(socket, "transport", None)
    if transport is not None:
        transport.abort()


def refusal_error(error: BaseException) -> GatewayError | None:
    """The error of an upgrade the server refused with an HTTP status, or ``None`` for other failures."""
    response = getattr(error, "response", None)
    if response is not None and isinstance(getattr(response, "status_code", None), int):
        status, headers, body = response.status_code, response.headers, response.body or b""
    elif isinstance(getattr(error, "status_code", None), int):
        status, headers, body = error.status_code, getattr(error, "headers", {}), b""  # type: ignore[attr-defined]
    else:
        return None
    retry_after = retry_after_ms(headers.get("Retry-After"))
    wire = _wire_error_of(body)
    if wire is not None:
        return GatewayError(
            wire["code"],
            wire["message"],
            retryable=wire.get("retryable") if isinstance(wire.get("retryable"), bool) else None,
            retry_after_ms=wire.get("retryAfterMs", retry_after),
            details=wire.get("details", {"httpStatus": status}),
        )
    # Not the gateway's JSON (a proxy's error page, or a library that drops the body).
    code = {401: "UNAUTHENTICATED", 403: "FORBIDDEN", 429: "RATE_LIMITED"}.get(status, "UNAVAILABLE")
    return GatewayError(
        code,
        f"the gateway refused the connection (HTTP {status})",
        retryable=code in ("UNAVAILABLE", "RATE_LIMITED"),
        retry_after_ms=retry_after,
        details={"httpStatus": status},
    )


def retry_after_ms(value: str | None, now: float | None = None) -> int | None:
    """A ``Retry-After`` header in milliseconds (delay-seconds or an HTTP date), at most five minutes;
    ``None`` when absent or unreadable."""
    text = (value or "").strip()
    if not text:
        return None
    if text.isdigit():
        milliseconds = int(text) * 1000
    else:
        try:
            moment = parsedate_to_datetime(text)
        except (TypeError, ValueError):
            return None
        milliseconds = round((moment.timestamp() - (time.time() if now is None else now)) * 1000)
    return min(max(0, milliseconds), MAX_RETRY_AFTER_MS)


def redact_url(url: str) -> str:
    """The URL without its query (which may carry ``api_key`` / ``access_token``) and user info."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    if parts.port is not None:
        host = f"{host}:{parts.port}"
    return f"{parts.scheme}://{host}{parts.path}"


def _unreachable(url: str, why: str) -> GatewayError:
    return GatewayError("UNAVAILABLE", f"cannot connect to {redact_url(url)}: {why}", retryable=True)


def _wire_error_of(body: bytes) -> dict[str, Any] | None:
    """The ``error`` of a refusal's JSON body, when it is the gateway's."""
    try:
        wire = json.loads(body.decode("utf-8")).get("error")
    except (ValueError, AttributeError):
        return None
    if isinstance(wire, dict) and isinstance(wire.get("code"), str) and isinstance(wire.get("message"), str):
        return wire
    return None
