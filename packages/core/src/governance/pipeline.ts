import { context, SpanStatusCode, trace } from '@opentelemetry/api';
import type { FieldCondition, GovernancePolicy, Rule } from '../config/governance-policy';
import { TIMINGS } from '../config/timings';
import { glob } from '../matching/glob';
import { compilePattern, MATCH_BUDGET, withinMatchBudget } from '../matching/linear-regexp';
import { maskPaths, valueAt } from '../matching/value-path';
import { tracer } from '../telemetry/tracing';
import { type BudgetStore, budgetValidators } from './budgets';
import { inputSchemaValidator, type SchemaStore } from './input-schemas';
import { type ModelDeps, modelValidator } from './model-validators';
import { PII_DETECTORS, SECRET_DETECTORS, scan } from './scanners';
import {
  type Direction,
  type GovernanceOutcome,
  type GovernedMessage,
  TIER_BUDGET_MS,
  type Tier,
  type Validator,
  type ValidatorAnswer,
  type ValidatorStats,
  type Verdict,
} from './validator';

/** What validators need from their process: validator agents (model tier) and Redis (budgets). */
export type GovernanceDeps = ModelDeps & { budgets?: BudgetStore; schemas?: SchemaStore };

/**
 * The validator pipeline: tier 1 (rules), then tier 2 (logic), then tier 3 (model). Validators of a
 * tier run in parallel, each within its timeout; a deny ends the pipeline after its tier; redactions
 * apply one after the other, so the next tier sees the masked message. Dry-run validators are timed
 * and recorded but decide nothing.
 */
export class GovernancePipeline {
  readonly stats = new Map<string, ValidatorStats>();
  private readonly byDirection: Record<Direction, readonly Validator[]>;

  constructor(
    private readonly validators: readonly Validator[],
    /** Told of every verdict as it is recorded (metrics). */
    private readonly observe?: (verdict: Verdict) => void,
  ) {
    const of = (d: Direction) => validators.filter((v) => !v.directions || v.directions.includes(d));
    this.byDirection = { request: of('request'), response: of('response') };
  }

  /** Whether there is anything to run. */
  get empty(): boolean {
    return this.validators.length === 0;
  }

  /**
   * Whether a message certainly passes unchanged, known at once: no validator judges its direction,
   * or each that does can tell it allows it (the common case of a policy without governance rules).
   */
  passes(message: GovernedMessage): boolean {
    return this.byDirection[message.direction].every((v) => !v.dryRun && v.quickAllow?.(message) === true);
  }

  async run(message: GovernedMessage): Promise<GovernanceOutcome> {
    let data = message.data;
    const verdicts: Verdict[] = [];
    let approval: Verdict | undefined;
    const judging = this.byDirection[message.direction];
    for (const tier of [1, 2, 3] as const) {
      const validators = judging.filter((v) => v.tier === tier);
      if (validators.length === 0) continue;
      const current = { ...message, data };
      const answers = await Promise.all(validators.map((v) => this.judge(v, current)));
      let denied: Verdict | undefined;
      for (const [verdict, answer] of answers) {
        for (const s of answer?.shadow ?? []) {
          const shadow: Verdict = { validator: s.by, tier, decision: s.decision, ms: verdict.ms, dryRun: true };
          if (s.reason !== undefined) shadow.reason = s.reason;
          verdicts.push(shadow);
          this.record(shadow);
        }
        verdicts.push(verdict);
        if (verdict.dryRun) continue;
        if (verdict.decision === 'deny') denied ??= verdict;
        else if (verdict.decision === 'require-approval') approval ??= verdict;
        else if (verdict.decision === 'redact' && answer?.mask) data = answer.mask(data);
      }
      if (denied) return { decision: 'deny', data: message.data, verdicts, decisive: denied };
    }
    if (approval) return { decision: 'require-approval', data, verdicts, decisive: approval };
    return { decision: 'allow', data, verdicts };
  }

  private async judge(validator: Validator, message: GovernedMessage): Promise<[Verdict, ValidatorAnswer | undefined]> {
    const started = performance.now();
    let answer: ValidatorAnswer | undefined;
    let failed: Verdict['failed'];
    let timer: NodeJS.Timeout | undefined;
    try {
      const result = validator.check(message);
      if (result instanceof Promise) {
        // Only a validator that waits for something can run out of time: no timer for the others.
        answer = await Promise.race([
          result,
          new Promise<undefined>((resolve) => {
            timer = setTimeout(() => resolve(undefined), validator.timeoutMs);
          }),
        ]);
        if (answer === undefined) failed = 'timeout';
      } else {
        // Done already: its answer stands (cutting it off now would save no time); an overrun, a
        // pause of the process as often as a slow validator, is counted.
        answer = result;
      }
    } catch {
      failed = 'error';
    } finally {
      clearTimeout(timer);
    }
    const ms = performance.now() - started;
    recordValidatorSpan(validator, started, failed, answer);
    const verdict: Verdict = failed
      ? {
          validator: validator.name,
          tier: validator.tier,
          decision: validator.failMode === 'open' ? 'allow' : 'deny',
          reason:
            failed === 'timeout'
              ? `did not answer within ${validator.timeoutMs} ms (fail-${validator.failMode})`
              : `failed (fail-${validator.failMode})`,
          ms,
          failed,
        }
      : { validator: answer!.by ?? validator.name, tier: validator.tier, decision: answer!.decision, ms };
    if (!failed && answer?.reason !== undefined) verdict.reason = answer.reason;
    if (!failed && answer?.decision === 'require-approval' && answer.approval) verdict.approval = answer.approval;
    if (validator.dryRun) verdict.dryRun = true;
    if (!failed && ms > validator.timeoutMs) verdict.overBudget = true;
    this.record(verdict);
    return [verdict, failed ? undefined : answer];
  }

  private record(verdict: Verdict): void {
    this.observe?.(verdict);
    let s = this.stats.get(verdict.validator);
    if (!s) {
      s = {
        checks: 0,
        denies: 0,
        redactions: 0,
        approvals: 0,
        wouldDeny: 0,
        failures: 0,
        overBudget: 0,
        totalMs: 0,
        maxMs: 0,
      };
      this.stats.set(verdict.validator, s);
    }
    s.checks += 1;
    s.totalMs += verdict.ms;
    s.maxMs = Math.max(s.maxMs, verdict.ms);
    if (verdict.failed) s.failures += 1;
    if (verdict.overBudget) s.overBudget += 1;
    if (verdict.dryRun) {
      if (verdict.decision === 'deny') s.wouldDeny += 1;
      return;
    }
    if (verdict.decision === 'deny') s.denies += 1;
    else if (verdict.decision === 'redact') s.redactions += 1;
    else if (verdict.decision === 'require-approval') s.approvals += 1;
  }
}

/** Builds the validators a policy's `governance` section declares. */
export function validatorsOf(given: GovernancePolicy | undefined, deps?: GovernanceDeps): Validator[] {
  const policy: GovernancePolicy = given ?? {};
  const out: Validator[] = [];
  const settings = (s: { dryRun?: boolean; timeoutMs?: number; failMode?: 'open' | 'closed' }, tier: Tier) => ({
    tier,
    dryRun: s.dryRun ?? false,
    timeoutMs: s.timeoutMs ?? TIER_BUDGET_MS[tier],
    failMode: s.failMode ?? ('closed' as const),
  });
  // Agents' declared input schemas apply whatever the policy says.
  // Its only wait is the first read of an agent's schemas on this replica, so its budget is wide.
  if (deps?.schemas)
    out.push(inputSchemaValidator(deps.schemas, { ...settings({}, 1), timeoutMs: TIMINGS.inputSchemaTimeoutMs }));
  if (policy.rules && policy.rules.length > 0)
    out.push(rulesValidator(policy.rules, settings(policy.rulesSettings ?? {}, 1)));
  if (policy.maxPayloadBytes !== undefined) {
    const limit = policy.maxPayloadBytes;
    out.push({
      name: 'payload-size',
      ...settings({}, 1),
      check(message) {
        const bytes = Buffer.byteLength(JSON.stringify(message.data ?? null));
        return bytes > limit
          ? { decision: 'deny', reason: `the ${message.direction} is ${bytes} bytes; at most ${limit} may pass` }
          : { decision: 'allow' };
      },
    });
  }
  if (policy.agents) {
    const { allow, deny } = policy.agents;
    out.push({
      name: 'agent-lists',
      ...settings({}, 1),
      directions: ['request'],
      check(message) {
        if (message.direction !== 'request') return { decision: 'allow' };
        if (deny?.some((g) => glob(g, message.agent))) {
          return { decision: 'deny', reason: `agent '${message.agent}' is on the deny list` };
        }
        if (allow && !allow.some((g) => glob(g, message.agent))) {
          return { decision: 'deny', reason: `agent '${message.agent}' is not on the allow list` };
        }
        return { decision: 'allow' };
      },
    });
  }
  if (policy.chains) {
    const { maxHops, maxDelegationDepth } = policy.chains;
    out.push({
      name: 'chains',
      ...settings(policy.chains, 2),
      directions: ['request'],
      check(message) {
        if (message.direction !== 'request') return { decision: 'allow' };
        if (message.agents.includes(message.agent)) {
          return { decision: 'deny', reason: `loop: ${[...message.agents, message.agent].join(' → ')}` };
        }
        if (maxHops !== undefined && message.agents.length + 1 > maxHops) {
          return {
            decision: 'deny',
            reason: `the chain ${[...message.agents, message.agent].join(' → ')} is ${message.agents.length + 1} agents deep; at most ${maxHops}`,
          };
        }
        if (maxDelegationDepth !== undefined && (message.delegationDepth ?? 0) > maxDelegationDepth) {
          return {
            decision: 'deny',
            reason: `delegation depth ${message.delegationDepth} is over ${maxDelegationDepth}`,
          };
        }
        return { decision: 'allow' };
      },
    });
  }
  for (const [name, scanner, detectors] of [
    ['secrets', policy.secrets, SECRET_DETECTORS],
    [
      'pii',
      policy.pii,
      PII_DETECTORS.filter((d) => !policy.pii?.kinds || (policy.pii.kinds as string[]).includes(d.kind)),
    ],
  ] as const) {
    if (!scanner) continue;
    const directions = scanner.directions ?? ['request', 'response'];
    out.push({
      name,
      ...settings(scanner, 2),
      directions,
      check(message) {
        if (!directions.includes(message.direction)) return { decision: 'allow' };
        const result = scan(message.data, detectors);
        if (result.found.length === 0) return { decision: 'allow' };
        const reason = `found ${result.found.join(', ')} in the ${message.direction}`;
        if (scanner.action === 'deny') return { decision: 'deny', reason };
        return { decision: 'redact', reason, mask: (data) => scan(data, detectors).masked };
      },
    });
  }
  if (policy.budgets) {
    const { tier, timeoutMs, failMode } = settings({}, 2);
    out.push(...budgetValidators(policy.budgets, { tier, timeoutMs, failMode }, deps?.budgets));
  }
  for (const model of policy.models ?? []) out.push(modelValidator(model, settings(model, 3), deps));
  return out;
}

/** Tier 1's rules as one validator: in order, the first rule that matches decides; dry-run rules are recorded and skipped. */
function rulesValidator(rules: readonly Rule[], settings: Omit<Validator, 'name' | 'check'>): Validator {
  const directions = new Set<Direction>(
    rules.flatMap((r) => {
      const d = r.when?.direction ?? 'request';
      return d === 'any' ? (['request', 'response'] as const) : [d];
    }),
  );
  return {
    name: 'rules',
    ...settings,
    directions: [...directions],
    check(message) {
      // The rules' `matches` patterns share one matching budget: a payload too long for them makes
      // the validator fail (its fail mode decides) rather than hold the event loop.
      return withinMatchBudget(MATCH_BUDGET, () => firstRule(rules, message));
    },
  };
}

/** The answer of the first rule that matches (dry-run rules recorded on the way), or allow. */
function firstRule(rules: readonly Rule[], message: GovernedMessage): ValidatorAnswer {
  const shadow: NonNullable<ValidatorAnswer['shadow']> = [];
  for (const rule of rules) {
    if (!ruleMatches(rule, message)) continue;
    const by = `rule:${rule.name}`;
    const reason = rule.reason ?? `rule '${rule.name}'`;
    if (rule.dryRun) {
      shadow.push({ by, decision: rule.verdict, reason });
      continue;
    }
    if (rule.verdict === 'redact') {
      const paths = rule.redact ?? [];
      return { decision: 'redact', reason, by, shadow, mask: (data) => maskPaths(data, paths) };
    }
    if (rule.verdict === 'require-approval' && rule.approval) {
      return { decision: rule.verdict, reason, by, shadow, approval: rule.approval };
    }
    return { decision: rule.verdict, reason, by, shadow };
  }
  return { decision: 'allow', shadow };
}

/** Whether a rule applies to a message. */
export function ruleMatches(rule: Rule, message: GovernedMessage): boolean {
  const when = rule.when ?? {};
  const direction = when.direction ?? 'request';
  if (direction !== 'any' && direction !== message.direction) return false;
  const one = (pattern: string | string[] | undefined, value: string): boolean =>
    pattern === undefined || (Array.isArray(pattern) ? pattern : [pattern]).some((p) => glob(p, value));
  if (!one(when.tenant, message.tenant)) return false;
  if (!one(when.principal, message.principal)) return false;
  if (!one(when.agent, message.agent)) return false;
  if (!one(when.task, message.task)) return false;
  if (when.role !== undefined && !message.roles.some((r) => one(when.role, r))) return false;
  for (const [path, condition] of Object.entries(when.data ?? {})) {
    if (!conditionHolds(condition, valueAt(message.data, path))) return false;
  }
  return true;
}

function conditionHolds(c: FieldCondition, value: { found: boolean; value: unknown }): boolean {
  if (c.exists !== undefined && c.exists !== value.found) return false;
  if (!value.found) return c.exists === false;
  const v = value.value;
  if (c.equals !== undefined && JSON.stringify(c.equals) !== JSON.stringify(v)) return false;
  if (c.in !== undefined && !c.in.some((x) => JSON.stringify(x) === JSON.stringify(v))) return false;
  if (c.gt !== undefined && !(typeof v === 'number' && v > c.gt)) return false;
  if (c.gte !== undefined && !(typeof v === 'number' && v >= c.gte)) return false;
  if (c.lt !== undefined && !(typeof v === 'number' && v < c.lt)) return false;
  if (c.lte !== undefined && !(typeof v === 'number' && v <= c.lte)) return false;
  // On the linear-time engine, charged to the check's budget (the value is the sender's).
  if (c.matches !== undefined && !(typeof v === 'string' && compilePattern(c.matches).test(v))) return false;
  return true;
}

/**
 * A span for one validator's verdict, under the governance span, when that span is recorded (traces
 * on): its tier, decision, and why it failed. Made after the fact, so an untraced run pays nothing.
 */
function recordValidatorSpan(
  validator: Validator,
  startedAt: number,
  failed: Verdict['failed'],
  answer: ValidatorAnswer | undefined,
): void {
  if (!trace.getActiveSpan()?.isRecording()) return;
  const startTime = performance.timeOrigin + startedAt;
  const span = tracer.startSpan(
    `validator ${validator.name}`,
    {
      startTime,
      attributes: {
        'openclaw.governance.tier': validator.tier,
        'openclaw.governance.decision': failed ? `failed-${validator.failMode}` : (answer?.decision ?? 'allow'),
        'openclaw.governance.dry_run': validator.dryRun,
      },
    },
    context.active(),
  );
  if (failed) span.setStatus({ code: SpanStatusCode.ERROR, message: failed });
  span.end();
}
