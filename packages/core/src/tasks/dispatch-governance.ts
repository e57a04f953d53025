import { GatewayError } from '@openclaw/protocol';
import type { ApprovalContext, GovernanceGate } from '../governance/governance-gate';
import type { GovernedMessage } from '../governance/validator';
import type { DispatchApproval, DispatchRequest, TaskCaller } from './dispatch-request';

/** A routed call whose agent answered, as governance judges the answer. */
export interface AnsweredCall {
  taskId: string;
  agent: string;
  task: string;
  caller: TaskCaller;
  deadline: number;
  /** Not judged on its way back (a validator agent's answer). */
  skipGovernance?: boolean;
  approval?: DispatchApproval;
}

/** Options of {@link DispatchGovernance}. */
export interface DispatchGovernanceOptions {
  gate: GovernanceGate;
  /** This replica, which holds the calls waiting for an approval (woken here when it is decided). */
  replicaId: string;
  /** Aborted when the dispatcher closes: ends the approval waits of calls still in admission. */
  signal: AbortSignal;
}

/**
 * The governance step of routed calls: each request is judged before it is routed, and each agent
 * output before the caller gets it. A message that passes as it is goes on at once; any other is
 * refused (`POLICY_DENIED`), masked where a validator redacted, or held (within the call's deadline)
 * while it waits for an approval.
 */
export class DispatchGovernance {
  private readonly gate: GovernanceGate;
  private readonly replicaId: string;
  private readonly signal: AbortSignal;
  /** Requests judged by the full pipeline that went on as they were. */
  private readonly unchangedRequests = new WeakSet<DispatchRequest>();

  constructor(options: DispatchGovernanceOptions) {
    this.gate = options.gate;
    this.replicaId = options.replicaId;
    this.signal = options.signal;
  }

  /**
   * Judges a request before anything is written or routed. @returns undefined when it passes as it
   * is (or is a validator's own call), else the request as judged, once any approval is given.
   * @throws {GatewayError} `POLICY_DENIED`, or `TIMEOUT` when the deadline passed while it was judged.
   */
  judgeRequest(request: DispatchRequest, taskId: string, deadline: number): Promise<DispatchRequest> | undefined {
    if (request.skipGovernance) return undefined;
    const message = governanceMessage(request.caller, request.agent, request.task, 'request', request.data ?? null);
    if (this.gate.passes(message)) return undefined;
    return this.held(request, message, taskId, deadline);
  }

  /**
   * Judges an agent's output before the caller gets it. @returns undefined when it passes as it is,
   * else the output as judged, once any approval is given.
   */
  judgeOutput(call: AnsweredCall, output: unknown, seen?: { approved: boolean }): Promise<unknown> | undefined {
    if (call.skipGovernance) return undefined;
    const message = governanceMessage(call.caller, call.agent, call.task, 'response', output ?? null);
    if (this.gate.passes(message)) return undefined;
    return this.gate.check(message, this.approvalContext(call.approval, call.taskId, call.deadline), seen);
  }

  /**
   * Whether a request {@link DispatchGovernance.judgeRequest} answered went on as it was: nothing
   * redacted, no approval needed (what the result cache may serve).
   */
  unchanged(judged: DispatchRequest): boolean {
    return this.unchangedRequests.has(judged);
  }

  private async held(
    request: DispatchRequest,
    message: GovernedMessage,
    taskId: string,
    deadline: number,
  ): Promise<DispatchRequest> {
    const seen = { approved: false };
    const data = await this.gate.check(message, this.approvalContext(request.approval, taskId, deadline), seen);
    if (Date.now() >= deadline) {
      throw new GatewayError('TIMEOUT', `the deadline of task '${request.task}' passed while it was judged`);
    }
    const judged = { ...request, data };
    if (data === message.data && !seen.approved) this.unchangedRequests.add(judged);
    return judged;
  }

  private approvalContext(
    approval: DispatchApproval | undefined,
    taskId: string,
    deadline: number,
  ): ApprovalContext | undefined {
    if (!approval) return undefined;
    return { ...approval, taskId, deadline, origin: this.replicaId, signal: this.signal };
  }
}

/** A call's request, or its agent's answer, as governance judges it. */
function governanceMessage(
  caller: TaskCaller,
  agent: string,
  task: string,
  direction: 'request' | 'response',
  data: unknown,
): GovernedMessage {
  const message: GovernedMessage = {
    direction,
    tenant: caller.tenant,
    principal: caller.principal,
    roles: caller.roles ?? [],
    agent,
    task,
    data,
    agents: caller.agents ?? [],
  };
  if (caller.delegationDepth !== undefined) message.delegationDepth = caller.delegationDepth;
  return message;
}
