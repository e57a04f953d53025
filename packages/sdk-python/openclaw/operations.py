"""The protocol's one-request actions (tasks, workflows, approvals, agents, delegation), as methods of
:class:`openclaw.GatewayClient`. Each sends one request and returns its result, checked against the
protocol: a result of the wrong shape raises ``INTERNAL`` rather than break later in the caller."""

from __future__ import annotations

import time
from abc import ABC, abstractmethod
from typing import Any, Literal, cast

from .errors import GatewayError
from .types import AgentInfo, ApprovalRecord, DelegateResult, PingResult, SubmitResult, TaskRecord, TaskState


class GatewayOperations(ABC):
    @abstractmethod
    async def request(self, action: str, params: dict[str, Any] | None = None, *, timeout: float | None = None) -> Any:
        """Sends one request and returns its result (see :meth:`GatewayClient.request`)."""

    async def task_get(self, task_id: str) -> TaskRecord:
        """The record of a task (``task.get``); raises ``NOT_FOUND`` for an unknown id."""
        return cast(
            TaskRecord, expect_object("task.get", await self.request("task.get", {"taskId": task_id}), "taskId")
        )

    async def task_cancel(self, task_id: str) -> SubmitResult:
        """Cancels a task that has not ended (``task.cancel``): ``{taskId, status: "canceled"}``."""
        result = await self.request("task.cancel", {"taskId": task_id})
        return cast(SubmitResult, expect_object("task.cancel", result, "taskId", "status"))

    async def task_subscribe(self, task_id: str, *, after: str | None = None) -> SubmitResult:
        """Subscribes this connection to a task's ``task.status`` / ``task.progress`` events (``task.subscribe``),
        after event cursor ``after``. Subscriptions belong to the connection: :meth:`wait_for_task` renews them."""
        params: dict[str, Any] = {"taskId": task_id}
        if after is not None:
            params["after"] = after
        return cast(SubmitResult, await self.request("task.subscribe", params))

    async def task_list(self, status: TaskState = "failed", *, limit: int | None = None) -> list[TaskRecord]:
        """The tenant's async tasks in a status, newest change first (``task.list``; default ``failed``)."""
        params: dict[str, Any] = {"status": status}
        if limit is not None:
            params["limit"] = limit
        return cast(list[TaskRecord], expect_list("task.list", await self.request("task.list", params)))

    async def task_respond(self, task_id: str, output: Any) -> None:
        """Answers a task waiting for a human (``task.respond``): the answer becomes its output."""
        await self.request("task.respond", {"taskId": task_id, "output": output})

    async def task_retry(self, task_id: str) -> None:
        """Runs a failed or canceled async task again from its first attempt (``task.retry``)."""
        await self.request("task.retry", {"taskId": task_id})

    async def start_workflow(
        self,
        workflow: dict[str, Any],
        input: Any = None,
        *,
        idempotency_key: str | None = None,
        thread: str | None = None,
    ) -> SubmitResult:
        """Starts a workflow (``workflow.start``; see docs/coordination.md) and returns its task id once the
        gateway has stored it; follow it with :meth:`wait_for_task`.

        Example::

            started = await client.start_workflow({"steps": [
                {"id": "fetch", "agent": "fetcher", "task": "fetch"},
                {"id": "clean", "agent": "cleaner", "task": "clean"},
            ]}, {"url": url})
            outcome = await client.wait_for_task(started["taskId"])
        """
        params: dict[str, Any] = {"workflow": workflow, "input": input}
        if idempotency_key is not None:
            params["idempotencyKey"] = idempotency_key
        if thread is not None:
            params["thread"] = thread
        result = await self.request("workflow.start", params)
        return cast(SubmitResult, expect_object("workflow.start", result, "taskId", "status"))

    async def approval_list(
        self,
        status: Literal["pending", "approved", "rejected", "expired", "consumed", "all"] = "pending",
        *,
        limit: int | None = None,
    ) -> list[ApprovalRecord]:
        """The tenant's approvals (``approval.list``), pending ones unless told otherwise. Needs ``approval:read``."""
        params: dict[str, Any] = {"status": status}
        if limit is not None:
            params["limit"] = limit
        return cast(list[ApprovalRecord], expect_list("approval.list", await self.request("approval.list", params)))

    async def approval_get(self, approval_id: str) -> ApprovalRecord:
        """One approval (``approval.get``)."""
        result = await self.request("approval.get", {"approvalId": approval_id})
        return cast(ApprovalRecord, expect_object("approval.get", result, "approvalId"))

    async def approval_decide(
        self, approval_id: str, decision: Literal["approve", "reject"], reason: str | None = None
    ) -> ApprovalRecord:
        """Approves or rejects a pending approval (``approval.decide``); returns the approval as it now stands."""
        params: dict[str, Any] = {"approvalId": approval_id, "decision": decision}
        if reason is not None:
            params["reason"] = reason
        return cast(
            ApprovalRecord,
            expect_object("approval.decide", await self.request("approval.decide", params), "approvalId"),
        )

    async def agents_list(self) -> list[AgentInfo]:
        """The agents of the whole cluster (``agents.list``)."""
        return cast(list[AgentInfo], expect_list("agents.list", await self.request("agents.list")))

    async def ping(self) -> PingResult:
        """Checks the connection end to end (``ping``); ``rttMs`` is the round trip measured here."""
        sent_at = time.perf_counter()
        result = expect_object("ping", await self.request("ping"), "pong", "time")
        return cast(PingResult, {**result, "rttMs": (time.perf_counter() - sent_at) * 1000})

    async def delegate(
        self,
        agent: str,
        permissions: list[str],
        *,
        ttl_seconds: int | None = None,
        max_depth: int | None = None,
        parent: str | None = None,
        principal: str | None = None,
    ) -> DelegateResult:
        """Mints a delegation token with which ``agent`` may call other agents on this principal's behalf,
        with at most ``permissions`` (``delegate``); pass it as ``call(..., delegation=token)``.

        Example::

            token = (await client.delegate("orchestrator", ["agent:invoke:billing-*"], max_depth=2))["token"]
        """
        params: dict[str, Any] = {"agent": agent, "permissions": list(permissions)}
        if ttl_seconds is not None:
            params["ttlSeconds"] = ttl_seconds
        if max_depth is not None:
            params["maxDepth"] = max_depth
        if parent is not None:
            params["parent"] = parent
        if principal is not None:
            params["principal"] = principal
        return cast(DelegateResult, expect_object("delegate", await self.request("delegate", params), "token"))


def expect_object(action: str, value: Any, *fields: str) -> dict[str, Any]:
    """``value`` if it is an object with ``fields``; else ``INTERNAL``."""
    if not isinstance(value, dict) or any(name not in value for name in fields):
        raise _malformed(action)
    return value


def expect_list(action: str, value: Any) -> list[Any]:
    """``value`` if it is a list; else ``INTERNAL``."""
    if not isinstance(value, list):
        raise _malformed(action)
    return value


def _malformed(action: str) -> GatewayError:
    return GatewayError("INTERNAL", f"the gateway sent a malformed '{action}' result", retryable=False)
