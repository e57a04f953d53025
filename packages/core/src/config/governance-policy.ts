import { z } from 'zod';
import { patternProblem } from '../matching/linear-regexp';

/** A condition on one field of the payload (dotted path, e.g. `order.amount`). */
const FieldConditionSchema = z
  .strictObject({
    equals: z.unknown().optional(),
    in: z.array(z.unknown()).min(1).optional(),
    gt: z.number().optional(),
    gte: z.number().optional(),
    lt: z.number().optional(),
    lte: z.number().optional(),
    /** A regular expression (ECMAScript syntax) run on a linear-time engine: no backreferences or lookaround. */
    matches: z
      .string()
      .superRefine((pattern, ctx) => {
        const problem = patternProblem(pattern);
        if (problem) ctx.addIssue({ code: 'custom', message: problem });
      })
      .optional(),
    exists: z.boolean().optional(),
  })
  .refine(
    (c) => Object.keys(c).length > 0,
    'a condition needs at least one of equals, in, gt, gte, lt, lte, matches, exists',
  );
export type FieldCondition = z.infer<typeof FieldConditionSchema>;

/** Glob over names (`billing-*`); a list matches any of its entries. */
const GlobSchema = z.union([z.string().min(1), z.array(z.string().min(1)).min(1)]);

/** What a rule applies to. Every given field must match. */
const MatchSchema = z.strictObject({
  /** `request` (on its way to the agent, the default), `response` (the agent's output), or `any`. */
  direction: z.enum(['request', 'response', 'any']).optional(),
  tenant: GlobSchema.optional(),
  principal: GlobSchema.optional(),
  role: GlobSchema.optional(),
  agent: GlobSchema.optional(),
  task: GlobSchema.optional(),
  /** Conditions on fields of the payload (the request's data, or the response's output). */
  data: z.record(z.string().min(1), FieldConditionSchema).optional(),
});

/** Settings any validator may have. */
const ValidatorSettingsSchema = {
  /** Record what it would decide, without enforcing it. */
  dryRun: z.boolean().optional(),
  /** How long it may take; default its tier's budget (10, 100 or 1000 ms). */
  timeoutMs: z.number().int().min(1).max(60_000).optional(),
  /** What a validator that times out or fails decides: `closed` denies, `open` allows. Default `closed`. */
  failMode: z.enum(['open', 'closed']).optional(),
};

/** What a `require-approval` verdict asks for (any field left out takes the section's `approvals` default). */
const ApprovalSettingsSchema = z.strictObject({
  /** How many different principals must approve (N of the M who may). Default 1. */
  approvers: z.number().int().min(1).max(10).optional(),
  /** The role each approver must hold, directly or through a role that inherits it. */
  role: z.string().min(1).max(128).optional(),
  /** Only these principals may decide. */
  principals: z.array(z.string().min(1).max(256)).min(1).max(100).optional(),
  /** How long the approval waits before it expires (and the message is refused). Default 15 minutes. */
  expiresMs: z
    .number()
    .int()
    .min(1000)
    .max(30 * 86_400_000)
    .optional(),
});
export type ApprovalSettings = z.infer<typeof ApprovalSettingsSchema>;

/** A rule of tier 1. Rules are read in order; the first that matches decides (so an `allow` rule before a `deny` rule makes an exception). */
const RuleSchema = z
  .strictObject({
    name: z.string().regex(/^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$/, 'rule names are letters, digits, _ . and -'),
    when: MatchSchema.optional(),
    verdict: z.enum(['allow', 'deny', 'redact', 'require-approval']),
    reason: z.string().max(512).optional(),
    /** With `redact`: the fields to mask (dotted paths). */
    redact: z.array(z.string().min(1)).min(1).optional(),
    /** With `require-approval`: who must approve, how many, and how long it may wait. */
    approval: ApprovalSettingsSchema.optional(),
    /** Record what the rule would decide, and go on to the next rule. */
    dryRun: z.boolean().optional(),
  })
  .refine((r) => r.verdict !== 'redact' || r.redact !== undefined, {
    message: 'a redact rule needs the fields to mask in redact',
    path: ['redact'],
  })
  .refine((r) => r.approval === undefined || r.verdict === 'require-approval', {
    message: 'approval settings belong to a require-approval rule',
    path: ['approval'],
  })
  .refine(
    (r) =>
      r.approval?.principals === undefined ||
      r.approval.approvers === undefined ||
      r.approval.approvers <= r.approval.principals.length,
    { message: 'more approvers are required than principals may approve', path: ['approval', 'approvers'] },
  );
export type Rule = z.infer<typeof RuleSchema>;

/** A scanner of tier 2 (secrets, PII): what to do with what it finds, and where to look. */
const ScannerSchema = z.strictObject({
  action: z.enum(['redact', 'deny']),
  directions: z
    .array(z.enum(['request', 'response']))
    .min(1)
    .optional(),
  ...ValidatorSettingsSchema,
});

const PiiScannerSchema = ScannerSchema.extend({
  kinds: z
    .array(z.enum(['email', 'card', 'phone', 'iban']))
    .min(1)
    .optional(),
});

/**
 * A validator of tier 3 that asks a model: an HTTP classification endpoint (`url`), or a validator
 * agent connected to the gateway like any other agent (`agent`), which gets the message as the data
 * of a task.
 */
const ModelValidatorSchema = z
  .strictObject({
    name: z.string().regex(/^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$/, 'validator names are letters, digits, _ . and -'),
    url: z
      .string()
      .regex(/^https?:\/\/[^\s]+$/, 'expected an http:// or https:// URL')
      .optional(),
    /** The endpoint's contract: `openclaw` (see docs/governance.md) or `moderation` (the common moderation APIs' shape). */
    format: z.enum(['openclaw', 'moderation']).optional(),
    agent: z
      .string()
      .regex(/^[a-z0-9][a-z0-9._-]{0,62}$/, 'agent names match ^[a-z0-9][a-z0-9._-]{0,62}$')
      .optional(),
    /** The task the validator agent is sent. Default `validate`. */
    task: z.string().min(1).max(128).optional(),
    directions: z
      .array(z.enum(['request', 'response']))
      .min(1)
      .optional(),
    ...ValidatorSettingsSchema,
  })
  .refine((m) => (m.url === undefined) !== (m.agent === undefined), 'give exactly one of url and agent');
export type ModelValidatorConfig = z.infer<typeof ModelValidatorSchema>;

/**
 * A budget of tier 2: how many calls (or how much cost, as agents report it) a tenant or an agent may
 * use per window. Used up, requests are refused until the window ends.
 */
const BudgetSchema = z.strictObject({
  name: z.string().regex(/^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$/, 'budget names are letters, digits, _ . and -'),
  /** What one budget counter covers: each tenant, each agent (of each tenant), or each pair of principal and agent. */
  per: z.enum(['tenant', 'agent', 'principal']),
  /** Which calls count (globs). */
  tenant: GlobSchema.optional(),
  agent: GlobSchema.optional(),
  windowMs: z
    .number()
    .int()
    .min(100)
    .max(31 * 86_400_000),
  limit: z.number().positive(),
  /** `calls` (default), or `cost`: a number each output reports at `costPath`. */
  measure: z.enum(['calls', 'cost']).optional(),
  costPath: z.string().min(1).optional(),
  dryRun: z.boolean().optional(),
});
export type BudgetConfig = z.infer<typeof BudgetSchema>;

/** The `governance` section of the policy file. */
export const GovernancePolicySchema = z.strictObject({
  /** Tier 1: declarative rules, in order. */
  rules: z.array(RuleSchema).max(1000).optional(),
  /** Tier 1: settings of the rules validator as a whole (its timeout and fail mode). */
  rulesSettings: z.strictObject({ ...ValidatorSettingsSchema }).optional(),
  /** Tier 1: the largest payload (request data or response output, as JSON) that may pass. */
  maxPayloadBytes: z.number().int().min(1).optional(),
  /** Tier 1: agents that may be called (globs; when given, every other agent is refused) and agents that may not. */
  agents: z
    .strictObject({ allow: z.array(z.string().min(1)).optional(), deny: z.array(z.string().min(1)).optional() })
    .optional(),
  /** Tier 2: calls between agents. `maxHops`: how many agents deep a chain of calls may go; a chain that comes back to an agent already in it is a loop and is refused. */
  chains: z
    .strictObject({
      maxHops: z.number().int().min(1).max(64).optional(),
      maxDelegationDepth: z.number().int().min(1).max(5).optional(),
      ...ValidatorSettingsSchema,
    })
    .optional(),
  /** Tier 2: secrets (API keys, private keys, bearer tokens, cloud credentials). */
  secrets: ScannerSchema.optional(),
  /** Tier 2: personal data (emails, card numbers passing the Luhn check, phone numbers, IBANs). */
  pii: PiiScannerSchema.optional(),
  /** Tier 2: budgets over a time window. */
  budgets: z.array(BudgetSchema).max(100).optional(),
  /** Tier 3: validators that ask a model. */
  models: z.array(ModelValidatorSchema).max(16).optional(),
  /** What any `require-approval` verdict asks for, unless its rule says otherwise. */
  approvals: ApprovalSettingsSchema.optional(),
});
export type GovernancePolicy = z.infer<typeof GovernancePolicySchema>;
