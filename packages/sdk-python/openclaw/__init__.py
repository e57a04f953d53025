"""The Python client of the OpenClaw Gateway: call agents, serve agents, follow tasks, share state, over
one WebSocket connection that reconnects by itself.

Example::

    import openclaw

    async with await openclaw.connect("ws://127.0.0.1:18789", api_key="my-key") as client:
        output = await client.call("summarizer", "summarize", {"text": "hello"})

Scripts without asyncio use :func:`connect_sync`.
"""

import logging

from . import errors
from .agent_handle import AgentHandle, AgentOptions, CachePolicy, TaskHandler
from .backoff import Backoff
from .client import GatewayClient, connect
from .errors import (
    AuthenticationError,
    GatewayError,
    InputRequired,
    UnexpectedFrameError,
)
from .events import CallRetryInfo, ClosedInfo, ConnectedInfo, DisconnectedInfo, ReconnectingInfo
from .options import ReconnectOptions
from .shared_state import MemoryClient, StateClient, StateWatch, ThreadMemory
from .sync_client import SyncGatewayClient, connect_sync
from .task_request import TaskRequest
from .types import (
    AgentInfo,
    ApprovalRecord,
    ConnectionState,
    DelegateResult,
    EscalationPolicy,
    HelloResult,
    MemoryEntry,
    MemoryEntryInput,
    PingResult,
    RegisterResult,
    RetryPolicy,
    StateChange,
    StateEntry,
    StateListItem,
    StatePage,
    StateSetResult,
    SubmitResult,
    TaskOrigin,
    TaskOutcome,
    TaskProgressEvent,
    TaskRecord,
    TaskState,
    TaskStatusEvent,
    WireError,
)
from .version import SDK_VERSION

__version__ = SDK_VERSION

# A library logs to its own logger and leaves handlers to the application.
logging.getLogger("openclaw").addHandler(logging.NullHandler())

__all__ = [
    "SDK_VERSION",
    "AgentHandle",
    "AgentInfo",
    "AgentOptions",
    "ApprovalRecord",
    "AuthenticationError",
    "Backoff",
    "CachePolicy",
    "CallRetryInfo",
    "ClosedInfo",
    "ConnectedInfo",
    "ConnectionState",
    "DelegateResult",
    "DisconnectedInfo",
    "EscalationPolicy",
    "GatewayClient",
    "GatewayError",
    "HelloResult",
    "InputRequired",
    "MemoryClient",
    "MemoryEntry",
    "MemoryEntryInput",
    "PingResult",
    "ReconnectOptions",
    "ReconnectingInfo",
    "RegisterResult",
    "RetryPolicy",
    "StateChange",
    "StateClient",
    "StateEntry",
    "StateListItem",
    "StatePage",
    "StateSetResult",
    "StateWatch",
    "SubmitResult",
    "SyncGatewayClient",
    "TaskHandler",
    "TaskOrigin",
    "TaskOutcome",
    "TaskProgressEvent",
    "TaskRecord",
    "TaskRequest",
    "TaskState",
    "TaskStatusEvent",
    "ThreadMemory",
    "UnexpectedFrameError",
    "WireError",
    "connect",
    "connect_sync",
    "errors",
]
