"""The shapes of what the gateway sends and the SDK returns.

Results and events are the gateway's JSON objects as they arrive (plain dicts, typed here with
``TypedDict``), so a newer gateway's extra fields are kept; the wire's camelCase names are kept too.
"""

from __future__ import annotations

from typing import Any, Literal, NotRequired, TypedDict

#: The seven task states; the last four are terminal.
TaskState = Literal["submitted", "working", "input-required", "completed", "failed", "canceled", "rejected"]

#: Where a client is in its life.
ConnectionState = Literal["idle", "connecting", "connected", "reconnecting", "closed"]


class WireError(TypedDict):
    """The ``error`` object of an error response, a ``task.status`` or a task record."""

    code: str
    message: str
    retryable: bool
    retryAfterMs: NotRequired[int]
    details: NotRequired[Any]
    dispatched: NotRequired[bool]


class Principal(TypedDict):
    id: str
    tenant: str
    roles: list[str]


class Limits(TypedDict):
    maxFrameBytes: int
    heartbeatMs: int
    maxJsonDepth: NotRequired[int]


class HelloResult(TypedDict):
    """The ``hello`` result, kept as ``client.session``."""

    protocol: int
    sessionId: str
    replica: str
    principal: Principal
    limits: Limits
    #: Protocol 1.1 features: ``state``, ``memory``, ``cache`` (absent from a 1.0 gateway).
    features: NotRequired[list[str]]


class RegisterResult(TypedDict):
    agent: str
    instanceId: str


class TaskOrigin(TypedDict):
    """Who sent a task (the ``from`` of a ``task`` event)."""

    #: The caller's principal id.
    principal: str
    #: The agent the caller acts as, if it is one.
    agent: NotRequired[str]
    #: The agents the call came through, oldest first (agent-to-agent calls).
    agents: NotRequired[list[str]]
    #: Delegated calls: the principal the call is made for, and every principal that passed it on.
    onBehalfOf: NotRequired[str]
    chain: NotRequired[list[str]]


class SubmitResult(TypedDict):
    taskId: str
    status: TaskState


class TaskOutcome(TypedDict):
    """How an async task or workflow ended, as :meth:`GatewayClient.wait_for_task` returns it."""

    taskId: str
    status: Literal["completed", "failed", "canceled", "rejected"]
    output: NotRequired[Any]
    error: NotRequired[WireError]


class TaskRecord(TypedDict):
    """A task's record (``task.get``); async tasks and workflows carry more fields."""

    taskId: str
    agent: str
    task: str
    status: TaskState
    createdAt: int
    updatedAt: int
    output: NotRequired[Any]
    error: NotRequired[WireError]


class TaskStatusEvent(TypedDict):
    """A ``task.status`` event: a task changed state."""

    taskId: str
    status: TaskState
    output: NotRequired[Any]
    error: NotRequired[WireError]
    #: The event's place in the task's event stream: ``task.subscribe`` resumes after it.
    cursor: NotRequired[str]
    attempt: NotRequired[int]
    #: In ``input-required``: what the human is asked.
    question: NotRequired[Any]
    #: For a workflow step: the workflow's task id.
    parentId: NotRequired[str]


class TaskProgressEvent(TypedDict):
    """A ``task.progress`` event."""

    taskId: str
    progress: Any
    #: The ``coordinator`` request id, when the progress belongs to a sync call of this connection.
    id: NotRequired[int | str]
    #: Async tasks: the event's place in the task's event stream.
    cursor: NotRequired[str]


class AgentInfo(TypedDict):
    """One agent of ``agents.list``."""

    name: str
    kind: Literal["ws", "http"]
    instances: int
    tasks: list[str]
    capacity: NotRequired[int]
    inFlight: NotRequired[int]
    url: NotRequired[str]


class PingResult(TypedDict):
    pong: bool
    #: The gateway's clock, epoch milliseconds.
    time: int
    #: Round trip measured by this client, in milliseconds.
    rttMs: float


class DelegateResult(TypedDict):
    token: str
    expiresAt: int
    depth: int
    maxDepth: int


class ApprovalRecord(TypedDict, total=False):
    """An approval (``approval.list``, ``approval.get``, ``approval.decide``); see docs/protocol.md."""

    approvalId: str
    status: Literal["pending", "approved", "rejected", "expired", "consumed"]
    agent: str
    task: str
    direction: Literal["request", "response"]
    requestedBy: str
    validator: str
    reason: str
    required: dict[str, Any]
    approvals: int
    decisions: list[dict[str, Any]]
    createdAt: int
    updatedAt: int
    expiresAt: int
    decidedAt: int
    consumedAt: int
    taskId: str
    mode: Literal["sync", "async"]
    hash: str
    data: Any


class StateEntry(TypedDict):
    """A key of shared state (``state.get``)."""

    namespace: str
    key: str
    value: Any
    version: int
    updatedAt: int
    expiresAt: NotRequired[int]


class StateSetResult(TypedDict):
    version: int
    expiresAt: NotRequired[int]


class StateListItem(TypedDict):
    key: str
    version: int
    updatedAt: int


class StatePage(TypedDict):
    """One page of ``state.list``; no ``cursor``: the last page."""

    items: list[StateListItem]
    cursor: NotRequired[str | None]


class StateChange(TypedDict):
    """A ``state.changed`` event, as a watch's callback gets it."""

    namespace: str
    key: str
    version: int
    op: Literal["set", "delete", "expire"]


class MemoryEntryInput(TypedDict):
    """An entry to append to a memory thread."""

    role: str
    content: Any
    meta: NotRequired[dict[str, Any]]


class MemoryEntry(TypedDict):
    """An entry of a memory thread, as ``memory.read`` returns it."""

    seq: int
    role: str
    content: Any
    at: int
    meta: NotRequired[dict[str, Any]]


class RetryPolicy(TypedDict):
    """Retries of an async task's retryable failures: attempts in all, and the first backoff."""

    attempts: int
    backoffMs: NotRequired[int]


class EscalationPolicy(TypedDict):
    """How long an async task waits for a human when its agent escalates, and what then."""

    timeoutMs: int
    onTimeout: NotRequired[Literal["fail", "continue"]]
