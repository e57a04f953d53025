import type { ApprovalSettings } from '../config/governance-policy';

/** Which way a message goes: the request to the agent, or the agent's output back to the caller. */
export type Direction = 'request' | 'response';

/** A message the pipeline judges. */
export interface GovernedMessage {
  direction: Direction;
  tenant: string;
  principal: string;
  roles: readonly string[];
  /** The agent called. */
  agent: string;
  task: string;
  /** The request's data, or the response's output. */
  data: unknown;
  /** The agents the call passed through before this one, oldest first (empty for a call from a plain caller). */
  agents: readonly string[];
  /** For a delegated call: how deep the delegation chain is. */
  delegationDepth?: number;
}

export type Decision = 'allow' | 'deny' | 'redact' | 'require-approval';
export type Tier = 1 | 2 | 3;

/** One validator's verdict on one message, with its time. */
export interface Verdict {
  validator: string;
  tier: Tier;
  decision: Decision;
  reason?: string;
  ms: number;
  /** Recorded only: a dry-run validator decides nothing. */
  dryRun?: boolean;
  /** The validator did not answer in time, or threw; its fail mode decided. */
  failed?: 'timeout' | 'error';
  /** It answered, but after its budget (a synchronous validator, or a pause of the process). */
  overBudget?: boolean;
  /** With `require-approval`: what the approval needs, beyond the policy's defaults. */
  approval?: ApprovalSettings;
}

/** What the pipeline decided, and the message as it may go on (masked where a validator redacted). */
export interface GovernanceOutcome {
  decision: 'allow' | 'deny' | 'require-approval';
  data: unknown;
  verdicts: Verdict[];
  /** The verdict that denied, or asked for approval. */
  decisive?: Verdict;
}

/** What a validator answers: its decision, and for `redact` how to mask. */
export interface ValidatorAnswer {
  decision: Decision;
  reason?: string;
  mask?: (data: unknown) => unknown;
  /** The name the verdict goes under, when a part of the validator decided (`rule:<name>`). */
  by?: string;
  /** What dry-run parts of the validator would have decided (recorded, not enforced). */
  shadow?: { by: string; decision: Decision; reason?: string }[];
  /** With `require-approval`: what the approval needs, beyond the policy's defaults. */
  approval?: ApprovalSettings;
}

/** One validator of the pipeline. */
export interface Validator {
  name: string;
  tier: Tier;
  timeoutMs: number;
  failMode: 'open' | 'closed';
  dryRun: boolean;
  /** The directions it judges (both when absent): the others skip it. */
  directions?: readonly Direction[];
  /** True when the validator can tell at once, without waiting, that it allows the message. */
  quickAllow?(message: GovernedMessage): boolean;
  check(message: GovernedMessage): ValidatorAnswer | Promise<ValidatorAnswer>;
}

/** Each tier's latency budget: its validators' default timeout. */
export const TIER_BUDGET_MS: Readonly<Record<Tier, number>> = { 1: 10, 2: 100, 3: 1000 };

/** Per-validator counts and times, since the process started. */
export interface ValidatorStats {
  checks: number;
  denies: number;
  redactions: number;
  approvals: number;
  wouldDeny: number;
  failures: number;
  /** Answers that came after the validator's budget (and were used). */
  overBudget: number;
  totalMs: number;
  maxMs: number;
}
