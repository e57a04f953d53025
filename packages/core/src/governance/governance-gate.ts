import { GatewayError } from '@openclaw/protocol';
import type { AuditLog } from '../audit/audit-log';
import type { GovernancePolicy } from './governance-policy';
import type { ModelDeps } from './model-validators';
import type { GovernanceDeps } from './pipeline';
import {
  type GovernanceOutcome,
  GovernancePipeline,
  type GovernedMessage,
  type Validator,
  type Verdict,
  validatorsOf,
} from './pipeline';

/** Told of every judged message whose verdicts matter (a deny, a redaction, a dry-run finding). */
export type VerdictListener = (message: GovernedMessage, outcome: GovernanceOutcome, notable: Verdict[]) => void;

/**
 * Where routed messages meet the governance pipeline of the policy in force: `check` lets a message
 * through (masked where a validator redacted) or refuses it with `POLICY_DENIED` naming the validator.
 */
export class GovernanceGate {
  private built: { source: GovernancePolicy | undefined; pipeline: GovernancePipeline } | undefined;
  private deps: GovernanceDeps | undefined;
  private custom: Validator[] = [];

  constructor(
    /** The `governance` section of the policy in force (a new object when the policy changes). */
    private readonly policy: () => GovernancePolicy | undefined,
    private readonly listener: VerdictListener = () => undefined,
  ) {}

  /** Adds the custom validators loaded from configuration (`OPENCLAW_VALIDATORS`); they always run. */
  useCustom(validators: Validator[]): void {
    this.custom = validators;
    this.built = undefined;
  }

  /** Lets model validators call validator agents, and budgets count in Redis (set once the dispatcher exists). */
  useDeps(deps: GovernanceDeps): void {
    this.deps = deps;
    this.built = undefined;
  }

  /** The pipeline of the policy in force, built once per policy. */
  pipeline(): GovernancePipeline {
    const source = this.policy();
    if (!this.built || this.built.source !== source) {
      this.built = { source, pipeline: new GovernancePipeline([...validatorsOf(source, this.deps), ...this.custom]) };
    }
    return this.built.pipeline;
  }

  /** The per-validator counts and times of the pipeline in force. */
  stats(): Record<string, unknown> {
    return Object.fromEntries(this.pipeline().stats);
  }

  /** Whether a message certainly passes unchanged, known at once (then `check` need not run). */
  passes(message: GovernedMessage): boolean {
    return this.pipeline().passes(message);
  }

  /**
   * Judges a message. @returns the data that may go on.
   * @throws {GatewayError} `POLICY_DENIED` (details: validator, tier, reason, direction).
   */
  async check(message: GovernedMessage): Promise<unknown> {
    const pipeline = this.pipeline();
    if (pipeline.empty) return message.data;
    const outcome = await pipeline.run(message);
    const notable = outcome.verdicts.filter((v) => v.decision !== 'allow' || v.failed !== undefined);
    if (notable.length > 0) this.listener(message, outcome, notable);
    if (outcome.decision === 'allow') return outcome.data;
    const decisive = outcome.decisive!;
    const reason =
      outcome.decision === 'require-approval'
        ? `${decisive.reason ?? 'approval required'}: approvals are not available in this version, so it is refused`
        : (decisive.reason ?? 'denied');
    throw new GatewayError('POLICY_DENIED', `${decisive.validator} refused the ${message.direction}: ${reason}`, {
      details: { validator: decisive.validator, tier: decisive.tier, reason, direction: message.direction },
    });
  }
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
