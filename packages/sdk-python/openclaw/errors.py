"""Errors of the SDK: :class:`GatewayError` with the protocol's error codes, and one subclass per code.

``GatewayError(code, message)`` builds the subclass of that code, so an error the gateway sends can be
caught by its class (``except openclaw.errors.Timeout``) or by its ``code``; a code this version does
not know still comes through, as a plain :class:`GatewayError` with that code.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

#: Whether a caller may retry an error of this code as it is, when the error does not say otherwise
#: (the protocol's defaults; a code not listed is not retryable).
RETRYABLE_BY_DEFAULT: Mapping[str, bool] = {
    "BAD_REQUEST": False,
    "UNKNOWN_ACTION": False,
    "UNAUTHENTICATED": False,
    "FORBIDDEN": False,
    "NOT_FOUND": False,
    "AGENT_NOT_FOUND": False,
    "AGENT_UNAVAILABLE": True,
    "AGENT_ERROR": False,
    "TIMEOUT": True,
    "CANCELED": False,
    "RATE_LIMITED": True,
    "POLICY_DENIED": False,
    "CONFLICT": False,
    "PAYLOAD_TOO_LARGE": False,
    "UNAVAILABLE": True,
    "INTERNAL": False,
}


class GatewayError(Exception):
    """An error of the gateway protocol: an error response, or one the SDK raises locally
    (``TIMEOUT`` at a request's local deadline, ``UNAVAILABLE`` when the connection is gone, ...).

    Attributes:
        code: The protocol error code, e.g. ``AGENT_NOT_FOUND`` (or a newer gateway's own).
        message: Text for humans.
        retryable: Whether sending the same request again may succeed; the code's default when the
            gateway did not say.
        retry_after_ms: How long to wait before retrying, when the gateway said so.
        details: Machine-readable details, e.g. ``{"closeCode": 1001, "reason": "..."}``.
        dispatched: ``False`` when no agent received the task, so sending the call again cannot run it
            twice; ``None`` when that is not known.

    Example::

        try:
            await client.call("pricer", "quote", {"sku": "A-1"})
        except openclaw.errors.AgentNotFound:
            log.warning("no pricer is running")
        except openclaw.GatewayError as error:
            if error.retryable: ...
    """

    code: str
    message: str
    retryable: bool
    retry_after_ms: int | None
    details: Any
    dispatched: bool | None

    def __new__(cls, *args: Any, **kwargs: Any) -> GatewayError:
        # GatewayError("TIMEOUT", ...) is a Timeout: callers catch by class whoever built the error.
        code = args[0] if args else kwargs.get("code")
        if cls is GatewayError and isinstance(code, str):
            cls = _ERROR_CLASSES.get(code, GatewayError)
        return super().__new__(cls)

    def __init__(
        self,
        code: str,
        message: str,
        *,
        retryable: bool | None = None,
        retry_after_ms: int | None = None,
        details: Any = None,
        dispatched: bool | None = None,
    ) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.retryable = RETRYABLE_BY_DEFAULT.get(code, False) if retryable is None else retryable
        self.retry_after_ms = retry_after_ms
        self.details = details
        # Only "not dispatched" is a promise; anything else leaves open whether an agent has it.
        self.dispatched = False if dispatched is False else None

    def __str__(self) -> str:
        return f"{self.code}: {self.message}"

    def __repr__(self) -> str:
        return f"{type(self).__name__}(code={self.code!r}, message={self.message!r}, retryable={self.retryable!r})"

    @classmethod
    def from_wire(cls, wire: Mapping[str, Any]) -> GatewayError:
        """The error of an error response (``{"code", "message", "retryable"?, ...}``)."""
        retry_after = wire.get("retryAfterMs")
        return GatewayError(
            str(wire["code"]),
            str(wire["message"]),
            retryable=wire.get("retryable") if isinstance(wire.get("retryable"), bool) else None,
            retry_after_ms=retry_after if isinstance(retry_after, int) else None,
            details=wire.get("details"),
            dispatched=False if wire.get("dispatched") is False else None,
        )

    def to_wire(self) -> dict[str, Any]:
        """The error as it goes on the wire."""
        wire: dict[str, Any] = {"code": self.code, "message": self.message, "retryable": self.retryable}
        if self.retry_after_ms is not None:
            wire["retryAfterMs"] = self.retry_after_ms
        if self.details is not None:
            wire["details"] = self.details
        if self.dispatched is False:
            wire["dispatched"] = False
        return wire

    def undispatched(self) -> GatewayError:
        """This error, marked as raised before any agent received the task."""
        if self.dispatched is False:
            return self
        copy = GatewayError(
            self.code,
            self.message,
            retryable=self.retryable,
            retry_after_ms=self.retry_after_ms,
            details=self.details,
            dispatched=False,
        )
        copy.__cause__ = self.__cause__
        return copy


class _CodedError(GatewayError):
    """A :class:`GatewayError` of one code. Raise it with a message alone: ``errors.AgentUnavailable("busy")``."""

    CODE: ClassVar[str]

    def __init__(self, *args: Any, **options: Any) -> None:
        # Built by GatewayError(code, message) the code comes first; raised directly, it is the class's.
        if len(args) == 1 and "message" not in options:
            args = (self.CODE, args[0])
        super().__init__(*args, **options)


class BadRequest(_CodedError):
    """``BAD_REQUEST``: the frame or its parameters are invalid; ``details`` lists the failing fields."""

    CODE = "BAD_REQUEST"


class UnknownAction(_CodedError):
    """``UNKNOWN_ACTION``: the gateway has no such action."""

    CODE = "UNKNOWN_ACTION"


class Unauthenticated(_CodedError):
    """``UNAUTHENTICATED``: missing or unknown credentials (an upgrade refused with HTTP 401, or 1008)."""

    CODE = "UNAUTHENTICATED"


#: The name most Python libraries give a refused credential.
AuthenticationError = Unauthenticated


class Forbidden(_CodedError):
    """``FORBIDDEN``: the principal may not do this (or a browser origin refused at upgrade, HTTP 403)."""

    CODE = "FORBIDDEN"


class NotFound(_CodedError):
    """``NOT_FOUND``: no such task, approval or key (for this principal)."""

    CODE = "NOT_FOUND"


class AgentNotFound(_CodedError):
    """``AGENT_NOT_FOUND``: no instance of that agent handles that task."""

    CODE = "AGENT_NOT_FOUND"


class AgentUnavailable(_CodedError):
    """``AGENT_UNAVAILABLE``: the agent exists but cannot take or finish the task now. Retryable."""

    CODE = "AGENT_UNAVAILABLE"


class AgentError(_CodedError):
    """``AGENT_ERROR``: the agent reported failure; its own code is ``details["agentCode"]``."""

    CODE = "AGENT_ERROR"


class Timeout(_CodedError):
    """``TIMEOUT``: the deadline passed before the answer (at the gateway, or the SDK's local one). Retryable."""

    CODE = "TIMEOUT"


class Canceled(_CodedError):
    """``CANCELED``: the task was canceled."""

    CODE = "CANCELED"


class RateLimited(_CodedError):
    """``RATE_LIMITED``: too many requests; ``retry_after_ms`` says when to try again. Retryable."""

    CODE = "RATE_LIMITED"


class PolicyDenied(_CodedError):
    """``POLICY_DENIED``: a governance validator refused the request or the output."""

    CODE = "POLICY_DENIED"


class Conflict(_CodedError):
    """``CONFLICT``: the request clashes with current state (a stale ``if_version``, a task that ended)."""

    CODE = "CONFLICT"


class PayloadTooLarge(_CodedError):
    """``PAYLOAD_TOO_LARGE``: a value or frame over the gateway's limit."""

    CODE = "PAYLOAD_TOO_LARGE"


class Unavailable(_CodedError):
    """``UNAVAILABLE``: the cluster cannot serve now, or the connection is gone. Retryable unless closed for good."""

    CODE = "UNAVAILABLE"


class Internal(_CodedError):
    """``INTERNAL``: a bug in the gateway, or a result that does not match the protocol."""

    CODE = "INTERNAL"


_ERROR_CLASSES: dict[str, type[GatewayError]] = {
    cls.CODE: cls
    for cls in (
        BadRequest,
        UnknownAction,
        Unauthenticated,
        Forbidden,
        NotFound,
        AgentNotFound,
        AgentUnavailable,
        AgentError,
        Timeout,
        Canceled,
        RateLimited,
        PolicyDenied,
        Conflict,
        PayloadTooLarge,
        Unavailable,
        Internal,
    )
}


class InputRequired(GatewayError):
    """Raised by an agent's handler to escalate its task to a human.

    An async task (or workflow step) then waits in ``input-required`` with this message and details as
    its question, until an operator answers (``task.respond``) or the escalation times out. A sync
    caller gets it as ``AGENT_ERROR`` with ``details["agentCode"] == "INPUT_REQUIRED"``.

    Example::

        @agent.handle("answer")
        async def answer(request):
            if "refund" in request.data["question"]:
                raise InputRequired("refunds need a human", {"customer": request.data["customer"]})
            return await faq(request.data)
    """

    def __init__(self, message: str, details: Any = None) -> None:
        super().__init__("INPUT_REQUIRED", message, retryable=False, details=details)


class UnexpectedFrameError(Exception):
    """The gateway sent something this client cannot use: a frame that is not JSON, not an object,
    binary, or not what the protocol says. Reported to ``"error"`` listeners; the connection stays open.

    Attributes:
        frame: The start of the offending frame (at most 200 characters), for logs.
    """

    def __init__(self, message: str, frame: str) -> None:
        super().__init__(message)
        self.message = message
        self.frame = frame if len(frame) <= 200 else f"{frame[:200]}…"
