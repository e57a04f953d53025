import path from 'node:path';
import { pathToFileURL } from 'node:url';
import type { GovernedMessage } from './validator';
import { TIER_BUDGET_MS, type Tier, type Validator, type ValidatorAnswer } from './validator';

/**
 * What a custom validator module exports (as `default` or `validator`): a name, a tier, and a check.
 * Written in TypeScript against these types and compiled to JavaScript.
 *
 * @example
 * // validators/no-shouting.ts
 * import type { CustomValidator } from '@openclaw/core';
 * const validator: CustomValidator = {
 *   name: 'no-shouting',
 *   tier: 1,
 *   check: (message) => (JSON.stringify(message.data).match(/[A-Z]{20}/) ? { decision: 'deny', reason: 'shouting' } : { decision: 'allow' }),
 * };
 * export default validator;
 */
export interface CustomValidator {
  name: string;
  tier: Tier;
  timeoutMs?: number;
  failMode?: 'open' | 'closed';
  dryRun?: boolean;
  check(message: GovernedMessage): ValidatorAnswer | Promise<ValidatorAnswer>;
}

/**
 * Loads the custom validators named in configuration (`OPENCLAW_VALIDATORS`: paths of JavaScript
 * modules). @throws {Error} naming the module that cannot be loaded or does not export a validator.
 */
export async function loadCustomValidators(paths: readonly string[]): Promise<Validator[]> {
  const out: Validator[] = [];
  for (const file of paths) {
    const resolved = path.resolve(file);
    let loaded: Record<string, unknown>;
    try {
      loaded = (await import(pathToFileURL(resolved).href)) as Record<string, unknown>;
    } catch (error) {
      throw new Error(`custom validator ${file}: cannot be loaded: ${(error as Error).message}`);
    }
    const candidate = (loaded.validator ??
      loaded.default ??
      (loaded.default as Record<string, unknown> | undefined)?.default) as Partial<CustomValidator> | undefined;
    const problem = shapeProblem(candidate);
    if (problem) throw new Error(`custom validator ${file}: ${problem}`);
    const v = candidate as CustomValidator;
    out.push({
      name: `custom:${v.name}`,
      tier: v.tier,
      timeoutMs: v.timeoutMs ?? TIER_BUDGET_MS[v.tier],
      failMode: v.failMode ?? 'closed',
      dryRun: v.dryRun ?? false,
      check: (message) => v.check(message),
    });
  }
  return out;
}

function shapeProblem(v: Partial<CustomValidator> | undefined): string | undefined {
  if (!v || typeof v !== 'object') return 'exports no validator (export default { name, tier, check })';
  if (typeof v.name !== 'string' || !/^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$/.test(v.name)) {
    return 'its name must be 1 to 64 letters, digits, _ . or -';
  }
  if (v.tier !== 1 && v.tier !== 2 && v.tier !== 3) return 'its tier must be 1, 2 or 3';
  if (typeof v.check !== 'function') return 'it has no check(message) function';
  if (v.timeoutMs !== undefined && !(Number.isInteger(v.timeoutMs) && v.timeoutMs > 0)) {
    return 'its timeoutMs must be a positive integer';
  }
  if (v.failMode !== undefined && v.failMode !== 'open' && v.failMode !== 'closed') {
    return "its failMode must be 'open' or 'closed'";
  }
  return undefined;
}
