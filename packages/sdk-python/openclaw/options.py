"""Options of :func:`openclaw.connect`, checked once, with every default documented where it is declared."""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import urlsplit

from .backoff import Backoff

#: Default backoff cap of the first reconnection attempt, in seconds.
DEFAULT_INITIAL_DELAY = 0.5
#: Default largest reconnection backoff cap, in seconds.
DEFAULT_MAX_DELAY = 30.0
#: Default local deadline of a request that has none of its own, in seconds.
DEFAULT_REQUEST_TIMEOUT = 10.0
#: Default deadline of the WebSocket opening handshake, in seconds.
DEFAULT_CONNECT_TIMEOUT = 10.0
#: Default client name sent in ``hello``.
DEFAULT_CLIENT_NAME = "openclaw-sdk"


def _non_negative(name: str, value: float) -> None:
    if not value >= 0:
        raise ValueError(f"{name}: expected a number >= 0 (got {value})")


def _positive(name: str, value: float) -> None:
    if not value > 0:
        raise ValueError(f"{name}: expected a number > 0 (got {value})")


@dataclass(frozen=True)
class ReconnectOptions:
    """How the client reconnects after the connection drops: exponential backoff with full jitter.

    Example::

        client = await openclaw.connect(url, reconnect=ReconnectOptions(initial_delay=1.0, max_delay=60.0))
    """

    #: Backoff cap of the first attempt, in seconds.
    initial_delay: float = DEFAULT_INITIAL_DELAY
    #: Largest backoff cap, in seconds.
    max_delay: float = DEFAULT_MAX_DELAY
    #: Consecutive failed attempts before the client gives up and closes; ``None``: no limit.
    max_attempts: int | None = None

    def __post_init__(self) -> None:
        _non_negative("reconnect.initial_delay", self.initial_delay)
        _non_negative("reconnect.max_delay", self.max_delay)
        if self.max_attempts is not None:
            _non_negative("reconnect.max_attempts", self.max_attempts)

    @property
    def backoff(self) -> Backoff:
        return Backoff(self.initial_delay, self.max_delay)


@dataclass(frozen=True)
class ClientOptions:
    """Every option of a client, checked, with defaults applied (see :func:`openclaw.connect`)."""

    url: str
    api_key: str | None = None
    token: str | None = None
    #: ``None``: never reconnect.
    reconnect: ReconnectOptions | None = ReconnectOptions()
    request_timeout: float = DEFAULT_REQUEST_TIMEOUT
    connect_timeout: float = DEFAULT_CONNECT_TIMEOUT
    client_name: str = DEFAULT_CLIENT_NAME
    #: Whether to send ``hello`` after each (re)connection and keep its result as ``client.session``.
    hello: bool = True

    def __post_init__(self) -> None:
        if urlsplit(self.url).scheme not in ("ws", "wss"):
            raise ValueError("url: expected a ws:// or wss:// URL")
        _positive("request_timeout", self.request_timeout)
        _positive("connect_timeout", self.connect_timeout)

    @classmethod
    def build(cls, url: str, *, reconnect: bool | ReconnectOptions = True, **options: object) -> ClientOptions:
        """Options from :func:`openclaw.connect`'s arguments: ``reconnect`` may be a bool."""
        if reconnect is True:
            policy: ReconnectOptions | None = ReconnectOptions()
        elif reconnect is False:
            policy = None
        elif isinstance(reconnect, ReconnectOptions):
            policy = reconnect
        else:
            raise TypeError("reconnect: expected True, False or ReconnectOptions")
        return cls(url, reconnect=policy, **options)  # type: ignore[arg-type]
