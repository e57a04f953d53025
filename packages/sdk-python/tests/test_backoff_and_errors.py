"""Backoff bounds (full jitter) and the error classes."""

from __future__ import annotations

import random

import pytest

import openclaw
from openclaw import Backoff, GatewayError, errors
from openclaw.request_channel import retry_delay
from openclaw.websocket_transport import redact_url, retry_after_ms

POLICY = Backoff(0.1, 5.0)


def test_cap_doubles_from_the_initial_delay_and_stops_at_the_maximum() -> None:
    assert [POLICY.cap(attempt) for attempt in range(8)] == pytest.approx([0.1, 0.2, 0.4, 0.8, 1.6, 3.2, 5.0, 5.0])


def test_cap_stays_at_the_maximum_for_attempts_whose_power_of_two_would_overflow() -> None:
    assert POLICY.cap(2_000) == 5.0


def test_delay_spans_the_whole_window_from_zero_to_the_cap() -> None:
    assert POLICY.delay(3, lambda: 0.0) == 0.0
    assert POLICY.delay(3, lambda: 0.5) == pytest.approx(0.4)
    assert POLICY.delay(3, lambda: 0.999_999) == pytest.approx(0.8, rel=1e-5)
    assert POLICY.delay(10, lambda: 0.5) == pytest.approx(2.5)


def test_random_delays_lie_within_zero_and_the_cap_and_use_the_whole_window() -> None:
    draws = random.Random(7)
    for attempt in range(10):
        cap = POLICY.cap(attempt)
        delays = [POLICY.delay(attempt, draws.random) for _ in range(200)]
        assert all(0 <= delay < cap for delay in delays)
        # Full jitter, not "equal jitter": the low half of the window is used as much as the high one.
        assert min(delays) < cap / 4 and max(delays) > cap * 3 / 4


def test_call_retry_waits_the_larger_of_retry_after_and_the_backoff_and_only_for_undispatched_errors() -> None:
    busy = GatewayError("AGENT_UNAVAILABLE", "busy", retry_after_ms=300, dispatched=False)
    assert retry_delay(busy, 1, time_left=5.0, random=lambda: 0.5) == pytest.approx(0.3)
    assert retry_delay(busy, 6, time_left=5.0, random=lambda: 0.999) == pytest.approx(0.999)
    assert retry_delay(busy, 1, time_left=0.31) is None  # no room left before the deadline
    maybe_received = GatewayError("AGENT_UNAVAILABLE", "its replica went away")
    assert retry_delay(maybe_received, 1, time_left=5.0) is None
    refused = GatewayError("AGENT_NOT_FOUND", "none", dispatched=False)
    assert retry_delay(refused, 1, time_left=5.0) is None


def test_gateway_error_builds_the_class_of_its_code() -> None:
    error = GatewayError("TIMEOUT", "late")
    assert isinstance(error, errors.Timeout) and isinstance(error, GatewayError)
    assert (error.code, error.message, error.retryable, error.retry_after_ms, error.details) == (
        "TIMEOUT",
        "late",
        True,
        None,
        None,
    )
    assert isinstance(GatewayError("UNAUTHENTICATED", "no"), openclaw.AuthenticationError)
    assert str(error) == "TIMEOUT: late"


def test_a_code_class_can_be_raised_with_a_message_alone() -> None:
    error = errors.AgentUnavailable("every instance is busy", retry_after_ms=100)
    assert (error.code, error.message, error.retryable, error.retry_after_ms) == (
        "AGENT_UNAVAILABLE",
        "every instance is busy",
        True,
        100,
    )


@pytest.mark.parametrize(
    ("code", "retryable"),
    [("AGENT_UNAVAILABLE", True), ("TIMEOUT", True), ("RATE_LIMITED", True), ("UNAVAILABLE", True)]
    + [(code, False) for code in ("BAD_REQUEST", "NOT_FOUND", "AGENT_NOT_FOUND", "AGENT_ERROR", "INTERNAL")],
)
def test_retryable_defaults_to_the_protocols_default_for_the_code(code: str, retryable: bool) -> None:
    assert GatewayError(code, "x").retryable is retryable


def test_an_unknown_code_comes_through_as_a_plain_gateway_error_not_retryable() -> None:
    error = GatewayError.from_wire({"code": "QUOTA_EXCEEDED", "message": "over quota", "retryable": False})
    assert type(error) is GatewayError
    assert (error.code, error.retryable) == ("QUOTA_EXCEEDED", False)


def test_from_wire_keeps_every_field_and_the_wires_retryable_wins() -> None:
    error = GatewayError.from_wire(
        {
            "code": "RATE_LIMITED",
            "message": "slow down",
            "retryable": False,
            "retryAfterMs": 1500,
            "details": {"limit": 10},
        }
    )
    assert isinstance(error, errors.RateLimited)
    assert (error.retryable, error.retry_after_ms, error.details, error.dispatched) == (
        False,
        1500,
        {"limit": 10},
        None,
    )
    assert error.to_wire() == {
        "code": "RATE_LIMITED",
        "message": "slow down",
        "retryable": False,
        "retryAfterMs": 1500,
        "details": {"limit": 10},
    }


def test_undispatched_marks_a_copy_of_the_same_class() -> None:
    error = GatewayError("UNAVAILABLE", "closed", details={"closeCode": 1001})
    copy = error.undispatched()
    assert isinstance(copy, errors.Unavailable)
    assert (copy.dispatched, copy.details, error.dispatched) == (False, {"closeCode": 1001}, None)


def test_input_required_escalates_with_its_details() -> None:
    assert openclaw.InputRequired("refunds need a human", {"customer": 7}).to_wire() == {
        "code": "INPUT_REQUIRED",
        "message": "refunds need a human",
        "retryable": False,
        "details": {"customer": 7},
    }


def test_retry_after_reads_seconds_and_http_dates_and_caps_at_five_minutes() -> None:
    now = 1_796_205_600.0  # Wed, 02 Dec 2026 10:00:00 GMT
    assert retry_after_ms("3", now) == 3_000
    assert retry_after_ms(" 0 ", now) == 0
    assert retry_after_ms("Wed, 02 Dec 2026 10:00:30 GMT", now) == 30_000
    assert retry_after_ms("Wed, 02 Dec 2026 09:00:00 GMT", now) == 0
    assert retry_after_ms("86400", now) == 300_000
    assert retry_after_ms("soon", now) is None
    assert retry_after_ms("-5", now) is None
    assert retry_after_ms(None, now) is None


def test_urls_in_messages_lose_their_query_and_user_info() -> None:
    assert redact_url("wss://user:pw@gw.example:8443/ws?api_key=secret") == "wss://gw.example:8443/ws"
