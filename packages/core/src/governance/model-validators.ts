import { z } from 'zod';
import type { ModelValidatorConfig } from '../config/governance-policy';
import { TIMINGS } from '../config/timings';
import type { GovernedMessage, Validator, ValidatorAnswer } from './validator';

/** What a model validator needs from its process: a way to call a validator agent. */
export interface ModelDeps {
  /**
   * Runs a task on an agent of the message's tenant, outside governance (a validator's own call is not
   * judged again), and resolves with its output.
   */
  callAgent(tenant: string, agent: string, task: string, data: unknown, timeoutMs: number): Promise<unknown>;
}

/** The answer of an `openclaw`-format endpoint, or of a validator agent. */
export const ModelVerdictSchema = z.object({
  verdict: z.enum(['allow', 'deny', 'redact', 'require-approval']),
  reason: z.string().max(1024).optional(),
  /** With `redact`: the payload as it may go on. */
  data: z.unknown().optional(),
});

/** The answer of a moderation-format endpoint (`{results: [{flagged, categories}]}`). */
const ModerationSchema = z.object({
  results: z.array(z.object({ flagged: z.boolean(), categories: z.record(z.string(), z.boolean()).optional() })).min(1),
});

/** What the model is asked: the message, as the validator agent's task data or the endpoint's body. */
export function modelQuestion(message: GovernedMessage): Record<string, unknown> {
  return {
    direction: message.direction,
    tenant: message.tenant,
    principal: message.principal,
    agent: message.agent,
    task: message.task,
    data: message.data,
  };
}

/** A tier 3 validator from its configuration. */
export function modelValidator(
  config: ModelValidatorConfig,
  settings: Omit<Validator, 'name' | 'check'>,
  deps: ModelDeps | undefined,
): Validator {
  const directions = config.directions ?? ['request', 'response'];
  return {
    name: `model:${config.name}`,
    ...settings,
    directions,
    async check(message) {
      if (!directions.includes(message.direction)) return { decision: 'allow' };
      if (config.agent !== undefined) {
        if (!deps) throw new Error('validator agents are not available here');
        const output = await deps.callAgent(
          message.tenant,
          config.agent,
          config.task ?? 'validate',
          modelQuestion(message),
          settings.timeoutMs + TIMINGS.modelValidatorGraceMs,
        );
        return answerOf(ModelVerdictSchema.parse(output));
      }
      const format = config.format ?? 'openclaw';
      const body = format === 'moderation' ? { input: JSON.stringify(message.data ?? null) } : modelQuestion(message);
      const response = await fetch(config.url!, {
        method: 'POST',
        headers: { 'content-type': 'application/json', accept: 'application/json' },
        body: JSON.stringify(body),
        signal: AbortSignal.timeout(settings.timeoutMs + TIMINGS.modelValidatorGraceMs),
      });
      if (!response.ok) throw new Error(`the classifier answered HTTP ${response.status}`);
      const json: unknown = await response.json();
      if (format === 'openclaw') return answerOf(ModelVerdictSchema.parse(json));
      const result = ModerationSchema.parse(json).results[0]!;
      if (!result.flagged) return { decision: 'allow' };
      const categories = Object.entries(result.categories ?? {})
        .filter(([, on]) => on)
        .map(([name]) => name);
      return { decision: 'deny', reason: `flagged${categories.length > 0 ? `: ${categories.join(', ')}` : ''}` };
    },
  };
}

function answerOf(verdict: z.infer<typeof ModelVerdictSchema>): ValidatorAnswer {
  const answer: ValidatorAnswer = { decision: verdict.verdict };
  if (verdict.reason !== undefined) answer.reason = verdict.reason;
  if (verdict.verdict === 'redact') {
    const data = verdict.data;
    answer.mask = () => data ?? null;
  }
  return answer;
}
