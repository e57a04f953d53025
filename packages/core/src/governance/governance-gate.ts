import { GatewayError } from '@openclaw/protocol';
import type { AuditLog } from '../audit/audit-log';
import type { GovernancePolicy } from '../config/governance-policy';
import { inSpan } from '../telemetry/tracing';
import { type Approval, type ApprovalRequirement, approvalHash, DEFAULT_APPROVAL } from './approval-record';
import type { Approvals, ConsumeResult } from './approvals';
import type { ModelDeps } from './model-validators';
import type { GovernanceDeps } from './pipeline';
import { GovernancePipeline, validatorsOf } from './pipeline';
import type { GovernanceOutcome, GovernedMessage, Validator, ValidatorStats, Verdict } from './validator';

/** Told of every judged message whose verdicts matter (a deny, a redaction, a dry-run finding). */
export type VerdictListener = (message: GovernedMessage, outcome: GovernanceOutcome, notable: Verdict[]) => void;

/** How a message that needs an approval waits for it. */
export interface ApprovalContext {
  /** The task the message belongs to. */
  taskId: string;
  /** When the caller stops waiting (epoch ms). */
  deadline: number;
  /** `wait`: a sync call waits here until the deadline; `park`: an async task is parked ({@link AwaitingApproval}). */
  mode: 'wait' | 'park';
  /** An approval given for this message before: used (once) instead of asking again. */
  approvalId?: string;
  /** The replica of a waiting call, which a decision elsewhere wakes. */
  origin?: string;
  /** Told when a call starts waiting for an approval. */
  onPending?: (approval: Approval) => void;
  /** Ends a wait early: the replica is shutting down (the call is refused `UNAVAILABLE`, naming the approval). */
  signal?: AbortSignal;
}

/**
 * Thrown for a message of an async task that waits for an approval: the task parks in
 * `input-required` until the approval is decided or expires. Seen as `POLICY_DENIED` by anyone else.
 */
export class AwaitingApproval extends GatewayError {
  constructor(readonly approval: Approval) {
    super('POLICY_DENIED', `waiting for approval '${approval.approvalId}'`, {
      details: { approvalId: approval.approvalId, validator: approval.validator, direction: approval.direction },
    });
  }
}

/**
 * Where routed messages meet the governance pipeline of the policy in force: `check` lets a message
 * through (masked where a validator redacted) or refuses it with `POLICY_DENIED` naming the validator.
 */
/** What a {@link GovernanceGate} works with, all given when it is built. */
export interface GovernanceGateOptions {
  /** The `governance` section of the policy in force (a new object when the policy changes). */
  policy: () => GovernancePolicy | undefined;
  /** Told of every verdict worth recording (the audit trail). */
  listener?: VerdictListener;
  /** Lets model validators call validator agents, and budgets and schemas live in Redis. */
  deps?: GovernanceDeps;
  /** Parks messages that need an approval (without, `require-approval` refuses them). */
  approvals?: Approvals;
  /** The custom validators loaded from configuration (`OPENCLAW_VALIDATORS`); they always run. */
  custom?: Validator[];
}

export class GovernanceGate {
  private built: { source: GovernancePolicy | undefined; pipeline: GovernancePipeline } | undefined;
  private readonly policy: () => GovernancePolicy | undefined;
  private readonly listener: VerdictListener;
  private readonly deps: GovernanceDeps | undefined;
  private readonly custom: Validator[];
  private readonly approvals: Approvals | undefined;
  private observer: ((verdict: Verdict) => void) | undefined;

  constructor(options: GovernanceGateOptions) {
    this.policy = options.policy;
    this.listener = options.listener ?? (() => undefined);
    this.deps = options.deps;
    this.custom = options.custom ?? [];
    this.approvals = options.approvals;
  }

  /** Tells `observer` of every verdict of every pipeline (metrics). */
  onVerdict(observer: (verdict: Verdict) => void): void {
    this.observer = observer;
    this.built = undefined;
  }

  /** The pipeline of the policy in force, built once per policy. */
  pipeline(): GovernancePipeline {
    const source = this.policy();
    if (!this.built || this.built.source !== source) {
      const observer = this.observer;
      this.built = {
        source,
        pipeline: new GovernancePipeline([...validatorsOf(source, this.deps), ...this.custom], observer),
      };
    }
    return this.built.pipeline;
  }

  /** The per-validator counts and times of the pipeline in force. */
  stats(): Record<string, ValidatorStats> {
    return Object.fromEntries(this.pipeline().stats);
  }

  /** Whether a message certainly passes unchanged, known at once (then `check` need not run). */
  passes(message: GovernedMessage): boolean {
    return this.pipeline().passes(message);
  }

  /**
   * Judges a message. A message that needs an approval (given `approval`) waits for it, or parks.
   * @returns the data that may go on.
   * @throws {GatewayError} `POLICY_DENIED` (details: validator, tier, reason, direction; approvalId
   * when an approval refused it), `TIMEOUT` (the deadline came while the approval was pending),
   * {@link AwaitingApproval} (mode `park`).
   * @param seen set to `approved: true` when the message went on only with an approval.
   */
  async check(message: GovernedMessage, approval?: ApprovalContext, seen?: { approved: boolean }): Promise<unknown> {
    const pipeline = this.pipeline();
    if (pipeline.empty) return message.data;
    const outcome = await inSpan(
      `governance ${message.direction}`,
      { attributes: { 'openclaw.agent': message.agent, 'openclaw.task': message.task } },
      async (span) => {
        const judged = await pipeline.run(message);
        span.setAttribute('openclaw.governance.decision', judged.decision);
        if (judged.decisive) span.setAttribute('openclaw.governance.validator', judged.decisive.validator);
        return judged;
      },
    );
    const notable = outcome.verdicts.filter((v) => v.decision !== 'allow' || v.failed !== undefined);
    if (notable.length > 0) this.listener(message, outcome, notable);
    if (outcome.decision === 'allow') return outcome.data;
    const decisive = outcome.decisive!;
    if (outcome.decision === 'require-approval') {
      if (seen) seen.approved = true;
      if (this.approvals && approval) return this.approve(message, outcome.data, decisive, approval);
      throw refusal(message, decisive, `${decisive.reason ?? 'approval required'}: no approval can be asked for here`);
    }
    throw refusal(message, decisive, decisive.reason ?? 'denied');
  }

  /** What an approval asked for by this verdict needs: the verdict's own settings over the policy's defaults. */
  requirement(verdict: Verdict): ApprovalRequirement {
    const out: ApprovalRequirement = { ...DEFAULT_APPROVAL };
    for (const settings of [this.policy()?.approvals, verdict.approval]) {
      for (const [name, value] of Object.entries(settings ?? {})) {
        if (value !== undefined) (out as unknown as Record<string, unknown>)[name] = value;
      }
    }
    return out;
  }

  private async approve(
    message: GovernedMessage,
    data: unknown,
    decisive: Verdict,
    context: ApprovalContext,
  ): Promise<unknown> {
    const approvals = this.approvals!;
    const hash = approvalHash({ ...message, data });
    const ownTask = context.mode === 'park' ? context.taskId : undefined;
    let approval: Approval | undefined;
    if (context.approvalId !== undefined) {
      const used = await approvals.consume(message.tenant, context.approvalId, hash, message.principal, ownTask);
      if (used.result === 'ok' || used.result === 'again') return data;
      if (used.result !== 'pending') throw refusedUse(message, decisive, context.approvalId, used);
      approval = used.approval;
    }
    approval ??= await approvals.request({
      tenant: message.tenant,
      direction: message.direction,
      agent: message.agent,
      task: message.task,
      requestedBy: message.principal,
      validator: decisive.validator,
      reason: decisive.reason,
      requirement: this.requirement(decisive),
      hash,
      data,
      taskId: context.taskId,
      mode: context.mode === 'park' ? 'async' : 'sync',
      origin: context.origin,
    });
    if (context.mode === 'park') throw new AwaitingApproval(approval);
    context.onPending?.(approval);
    const id = approval.approvalId;
    const waiting = approval;
    const decided = await inSpan(
      'approval wait',
      { attributes: { 'openclaw.approval_id': id, 'openclaw.governance.validator': decisive.validator } },
      async (span) => {
        const settled = await approvals.wait(message.tenant, id, context.deadline, waiting, context.signal);
        span.setAttribute('openclaw.approval.status', settled?.status ?? 'missing');
        return settled;
      },
    );
    if (decided?.status === 'pending' && context.signal?.aborted) {
      // The approval stays open: the same call sent elsewhere with this approvalId waits for it there.
      const again =
        message.direction === 'request' ? `; send the call again (to another replica) with approvalId '${id}'` : '';
      throw new GatewayError('UNAVAILABLE', `this replica shut down while waiting for approval '${id}'${again}`, {
        details: { approvalId: id, expiresAt: decided.expiresAt },
      });
    }
    if (decided?.status === 'approved') {
      const used = await approvals.consume(message.tenant, id, hash, message.principal);
      if (used.result === 'ok') return data;
      throw refusedUse(message, decisive, id, used);
    }
    if (decided?.status === 'pending') {
      throw new GatewayError(
        'TIMEOUT',
        `the call's deadline passed while approval '${id}' was pending; it stays open until ${new Date(decided.expiresAt).toISOString()}, and once approved the same call with approvalId '${id}' goes through`,
        { details: { approvalId: id, expiresAt: decided.expiresAt } },
      );
    }
    throw refusedUse(message, decisive, id, {
      result: decided?.status ?? 'missing',
      approval: decided,
    } as ConsumeResult);
  }
}

function refusal(
  message: GovernedMessage,
  decisive: Verdict,
  reason: string,
  extra?: Record<string, unknown>,
): GatewayError {
  return new GatewayError('POLICY_DENIED', `${decisive.validator} refused the ${message.direction}: ${reason}`, {
    details: { validator: decisive.validator, tier: decisive.tier, reason, direction: message.direction, ...extra },
  });
}

/** The refusal of a message whose approval does not let it through. */
function refusedUse(
  message: GovernedMessage,
  decisive: Verdict,
  approvalId: string,
  used: ConsumeResult,
): GatewayError {
  const rejection = used.approval?.decisions.find((d) => d.decision === 'reject');
  const reason =
    used.result === 'rejected'
      ? `approval '${approvalId}' was rejected by ${rejection?.principal ?? 'an approver'}${rejection?.reason ? `: ${rejection.reason}` : ''}`
      : used.result === 'expired'
        ? `approval '${approvalId}' expired before it was decided`
        : used.result === 'consumed'
          ? `approval '${approvalId}' has already been used`
          : used.result === 'mismatch'
            ? `the message is not the one approval '${approvalId}' was given for`
            : `no approval '${approvalId}'`;
  return refusal(message, decisive, reason, { approvalId, approval: used.result });
}

/**
 * A listener that writes the notable verdicts to the audit trail: `governance.denied`,
 * `governance.redacted`, `governance.approval-required`, `governance.would-deny` (dry run) and
 * `governance.validator-failed` (a timeout or error decided by its fail mode), with the validator,
 * its tier, its time, the reason and the call's agent and task. Never the payload.
 */
export function auditVerdicts(audit: AuditLog): VerdictListener {
  return (message, _outcome, notable) => {
    for (const verdict of notable) {
      const type = verdict.dryRun
        ? verdict.decision === 'allow'
          ? undefined
          : 'governance.would-deny'
        : verdict.failed && verdict.decision === 'allow'
          ? 'governance.validator-failed'
          : verdict.decision === 'deny'
            ? 'governance.denied'
            : verdict.decision === 'redact'
              ? 'governance.redacted'
              : verdict.decision === 'require-approval'
                ? 'governance.approval-required'
                : undefined;
      if (!type) continue;
      audit.record(message.tenant, {
        type,
        principal: message.principal,
        outcome: verdict.dryRun ? `would-${verdict.decision}` : verdict.decision,
        details: {
          validator: verdict.validator,
          tier: verdict.tier,
          ms: Math.round(verdict.ms * 100) / 100,
          reason: verdict.reason ?? null,
          direction: message.direction,
          agent: message.agent,
          task: message.task,
          failed: verdict.failed ?? null,
        },
      });
    }
  };
}

/** Model validators' calls to validator agents, through a dispatcher, outside governance. */
export function validatorAgents(dispatcher: {
  dispatch(request: {
    agent: string;
    task: string;
    data: unknown;
    timeoutMs: number;
    caller: { principal: string; tenant: string };
    skipGovernance?: boolean;
    record?: boolean;
  }): Promise<{ output: Promise<unknown> }>;
}): ModelDeps {
  return {
    async callAgent(tenant, agent, task, data, timeoutMs) {
      const handle = await dispatcher.dispatch({
        agent,
        task,
        data,
        timeoutMs,
        caller: { principal: 'governance', tenant },
        skipGovernance: true,
        record: false,
      });
      return handle.output;
    },
  };
}
