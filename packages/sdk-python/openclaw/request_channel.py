"""Requests and their responses: fresh ids, matching by id, local deadlines, and transparent call retries."""

from __future__ import annotations

import asyncio
import contextlib
import json
import random as _random
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any, TypeVar

from .backoff import Backoff
from .errors import GatewayError, UnexpectedFrameError
from .events import ClientEventSink
from .pending_requests import PendingRequests, ProgressListener

if TYPE_CHECKING:
    from .connection import GatewayConnection

T = TypeVar("T")

#: Backoff of transparent call retries: the cap doubles from 50 ms to 1 s, with full jitter.
CALL_RETRY_BACKOFF = Backoff(0.05, 1.0)
#: A retry is not worth making with less than this (seconds) left of the call's deadline.
CALL_RETRY_MIN_LEFT = 0.02
#: The close code of a replica going away.
GOING_AWAY_CLOSE = 1001
#: The reason of a draining replica's 1001: it promises the requests it left unanswered were never handled.
DRAIN_CLOSE_REASON = "replica draining: reconnect to another"

#: Called when the caller stops waiting for a request still pending: its task id (if known) and request id.
CancelListener = Callable[[str | None, int], None]


class RequestChannel:
    """The requests of a client. Each request frame gets a fresh integer id and ends exactly once: with its
    response, at its local deadline (``TIMEOUT``), when its caller stops waiting, or when the connection it
    was sent on closes (``UNAVAILABLE``): requests are never carried over to the next connection."""

    def __init__(self, connection: GatewayConnection, events: ClientEventSink, request_timeout: float) -> None:
        self._connection = connection
        self._events = events
        self._request_timeout = request_timeout
        self._pending = PendingRequests()

    async def send(
        self,
        action: str,
        params: dict[str, Any],
        *,
        timeout: float | None = None,
        on_progress: ProgressListener | None = None,
        on_cancel: CancelListener | None = None,
    ) -> Any:
        """Sends one request and returns its ``result``, or raises a :class:`GatewayError`: the error
        response's, or ``TIMEOUT`` / ``UNAVAILABLE`` raised locally. A request made while no socket is open
        fails at once with ``UNAVAILABLE``; it is not queued."""
        if not self._connection.is_open:
            raise self._not_connected_error(action)
        request_id = self._pending.next_id()
        # The envelope's own fields win over same-named params.
        text = self.serialise({**params, "action": action, "id": request_id})
        future = self._pending.track(
            request_id, action, self._request_timeout if timeout is None else timeout, on_progress
        )

        def not_sent(error: BaseException) -> None:
            self._pending.reject(
                request_id, GatewayError("UNAVAILABLE", f"could not send '{action}': {error}", retryable=True)
            )

        self._connection.send(text, not_sent)
        try:
            return await future
        except asyncio.CancelledError:
            entry = self._pending.take(request_id)
            if entry is not None and on_cancel is not None:
                on_cancel(entry.task_id, request_id)
            raise

    def send_reply(self, frame: dict[str, Any]) -> bool:
        """Sends a frame that gets no response (an agent's reply). Returns False when no socket is open;
        raises ``BAD_REQUEST`` / ``PAYLOAD_TOO_LARGE`` when the frame cannot be sent."""
        text = self.serialise(frame)
        # A reply lost in a dying socket is the same as one not sent: the gateway ends the task by its deadline.
        return self._connection.send(text)

    async def with_retries(
        self,
        attempt: Callable[[float, GatewayError | None], Awaitable[T]],
        *,
        timeout: float,
        enabled: bool,
        on_retry: Callable[[int, float, GatewayError], None],
    ) -> T:
        """Runs ``attempt`` until it succeeds, sending a call again, within its deadline, when it is known that
        no agent received it: a retryable error with ``dispatched`` False. Each attempt gets what is left of
        the deadline (in seconds) and the error of the one before. While the client reconnects, the next
        attempt waits for the connection, at most until the deadline."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        last_error: GatewayError | None = None
        number = 1
        while True:
            # The first attempt gets the whole timeout as given, not less the microseconds since.
            left = timeout if number == 1 else max(0.001, deadline - loop.time())
            try:
                return await attempt(left, last_error)
            except GatewayError as error:
                delay = retry_delay(error, number, deadline - loop.time()) if enabled else None
                if delay is None:
                    raise
                on_retry(number + 1, delay, error)
                await self._until_retry(delay, deadline)
                # Still reconnecting at the deadline, or back too late to be worth it: the call ends with
                # what stopped it, never with a last attempt an agent could start and not finish in time.
                if deadline - loop.time() < CALL_RETRY_MIN_LEFT:
                    raise
                last_error = error
            number += 1

    def on_response(self, frame: dict[str, Any], text: str) -> None:
        """Handles a response frame: settles the request it answers, or reports it."""
        request_id = frame.get("id")
        # Requests of this client carry integer ids (a bool is not one, though Python calls it an int).
        our_id = request_id if isinstance(request_id, int) and not isinstance(request_id, bool) else None
        error = frame.get("error")
        well_formed = frame.get("ok") is True or (frame.get("ok") is False and is_wire_error(error))
        if not well_formed or not (our_id is not None or request_id is None or isinstance(request_id, str)):
            # The request it answers ends now rather than at its deadline.
            if not (our_id is not None and self._pending.reject(our_id, _malformed_response())):
                self._events.report_error(UnexpectedFrameError("the gateway sent a malformed response", text))
            return
        if our_id is not None:
            settled_now = (
                self._pending.resolve(our_id, frame.get("result"))
                if frame["ok"]
                else self._pending.reject(our_id, GatewayError.from_wire(error))  # type: ignore[arg-type]
            )
            # A response to a request that already timed out or was cancelled is expected, and dropped.
            if settled_now or self._pending.is_settled(our_id):
                return
        # Not ours: e.g. the gateway refusing an agent reply, which carries no id.
        if frame["ok"]:
            self._events.report_error(
                UnexpectedFrameError("the gateway sent a response to no request of this client", text)
            )
        else:
            self._events.report_error(GatewayError.from_wire(error))  # type: ignore[arg-type]

    def progress_listener(self, request_id: int, task_id: str) -> ProgressListener | None:
        """The progress listener of pending request ``request_id``, told its task id."""
        return self._pending.progress_listener(request_id, task_id)

    def connection_closed(self, code: int, reason: str, by_client: bool) -> None:
        """The socket closed: every request sent on it ends with ``UNAVAILABLE``, retryable unless the
        client closed it."""
        self._pending.reject_all(
            lambda action: GatewayError(
                "UNAVAILABLE",
                f"the client closed before '{action}' was answered"
                if by_client
                else f"the connection closed ({code}) before '{action}' was answered",
                retryable=not by_client,
                details={"closeCode": code, "reason": reason},
            )
        )

    def client_closed(self) -> None:
        """The client closed: ends whatever the socket's close did not."""
        self._pending.reject_all(
            lambda action: GatewayError(
                "UNAVAILABLE", f"the client closed before '{action}' was answered", retryable=False
            )
        )

    def serialise(self, frame: dict[str, Any]) -> str:
        """JSON text of a frame; raises ``BAD_REQUEST`` / ``PAYLOAD_TOO_LARGE`` rather than send what the
        gateway would refuse."""
        try:
            text = json.dumps(frame, separators=(",", ":"), ensure_ascii=False, allow_nan=False)
        except (TypeError, ValueError) as error:
            raise GatewayError(
                "BAD_REQUEST", f"'{frame.get('action')}' cannot be sent: it is not JSON-serialisable"
            ) from error
        # The gateway closes the socket (1009) on a frame over its limit; refuse this one frame instead.
        session = self._connection.session
        limit = session["limits"].get("maxFrameBytes") if session else None
        if isinstance(limit, int) and len(text.encode("utf-8")) > limit:
            raise GatewayError(
                "PAYLOAD_TOO_LARGE",
                f"'{frame.get('action')}' is larger than the gateway's {limit}-byte frame limit",
                details={"maxFrameBytes": limit},
            )
        return text

    async def _until_retry(self, delay: float, deadline: float) -> None:
        """Waits ``delay`` seconds, then, if the client is reconnecting, until it is back (at most until
        ``deadline``)."""
        await asyncio.sleep(delay)
        if self._connection.state not in ("connecting", "reconnecting"):
            return
        left = deadline - asyncio.get_running_loop().time()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._connection.wait_settled(), max(0.0, left))

    def _not_connected_error(self, action: str) -> GatewayError:
        state = self._connection.state
        if state == "closed":
            return GatewayError("UNAVAILABLE", f"cannot send '{action}': the client is closed", retryable=False)
        if state == "idle":
            return GatewayError(
                "UNAVAILABLE", f"cannot send '{action}': the client was not started (call start())", retryable=False
            )
        return GatewayError(
            "UNAVAILABLE", f"cannot send '{action}': not connected to the gateway", retryable=True, dispatched=False
        )


def retry_delay(
    error: GatewayError, attempt: int, time_left: float, random: Callable[[], float] = _random.random
) -> float | None:
    """How long (seconds) to wait before sending a call again after ``error`` ended attempt ``attempt``
    (1-based), or ``None`` when it must not be sent again: only a retryable error known not to have reached
    an agent (``dispatched`` False) is retried, and only while the deadline leaves room."""
    if not error.retryable or error.dispatched is not False:
        return None
    delay = max((error.retry_after_ms or 0) / 1000, CALL_RETRY_BACKOFF.delay(attempt - 1, random))
    return delay if delay + CALL_RETRY_MIN_LEFT < time_left else None


def is_wire_error(error: Any) -> bool:
    """Whether an error response's ``error`` is what the protocol says: ``code``, ``message`` and
    ``retryable`` always; ``retryAfterMs`` a whole number of milliseconds and ``dispatched`` a bool when given."""
    if not isinstance(error, dict):
        return False
    retry_after = error.get("retryAfterMs", 0)
    return (
        isinstance(error.get("code"), str)
        and isinstance(error.get("message"), str)
        and isinstance(error.get("retryable"), bool)
        and isinstance(retry_after, int)
        and not isinstance(retry_after, bool)
        and retry_after >= 0
        and isinstance(error.get("dispatched", False), bool)
    )


def is_drain_close(error: GatewayError) -> bool:
    """Whether an ``UNAVAILABLE`` raised for a request its closing connection left unanswered came from a
    gateway replica's drain: close code 1001 with the gateway's drain reason."""
    details = error.details if isinstance(error.details, dict) else {}
    return details.get("closeCode") == GOING_AWAY_CLOSE and details.get("reason") == DRAIN_CLOSE_REASON


def _malformed_response() -> GatewayError:
    return GatewayError("INTERNAL", "the gateway sent a malformed response", retryable=False)
