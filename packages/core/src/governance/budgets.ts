import type { BudgetConfig } from '../config/governance-policy';
import { glob } from '../matching/glob';
import { valueAt } from '../matching/value-path';
import { LuaScript } from '../redis/lua-script';
import type { RedisClient } from '../redis/redis-connection';
import type { GovernedMessage, Validator } from './validator';

/** Where budget counters live (one key per budget, subject and window, expiring with the window). */
export interface BudgetStore {
  redis: RedisClient;
  /** The key of one counter. */
  key(budget: string, subject: string, window: number): string;
}

/**
 * Atomically: if the counter is below the limit, adds `amount` (0 only reads) and answers the new
 * value; else answers -1 and leaves it. KEYS: counter. ARGV: limit, amount, ttl ms.
 */
const TAKE = new LuaScript(
  'budget-take',
  1,
  `
local used = tonumber(redis.call('GET', KEYS[1]) or '0')
if used >= tonumber(ARGV[1]) then return {-1, tostring(used)} end
if tonumber(ARGV[2]) > 0 then
  used = redis.call('INCRBYFLOAT', KEYS[1], ARGV[2])
  redis.call('PEXPIRE', KEYS[1], ARGV[3])
end
return {1, tostring(used)}
`,
);

/** The validators of a policy's budgets (tier 2, one each, named `budget:<name>`). */
export function budgetValidators(
  budgets: readonly BudgetConfig[],
  settings: Omit<Validator, 'name' | 'check' | 'dryRun'>,
  store: BudgetStore | undefined,
): Validator[] {
  if (!store) return [];
  const redis = store.redis;
  return budgets.map((budget) => ({
    name: `budget:${budget.name}`,
    ...settings,
    dryRun: budget.dryRun ?? false,
    async check(message) {
      if (!applies(budget, message)) return { decision: 'allow' };
      const window = Math.floor(Date.now() / budget.windowMs);
      const key = store.key(budget.name, subjectOf(budget, message), window);
      const ttl = budget.windowMs * 2;
      const cost = budget.measure === 'cost';
      if (message.direction === 'response') {
        // The agent reports what the call cost: counted now, it limits the next requests.
        if (!cost) return { decision: 'allow' };
        const found = valueAt(message.data, budget.costPath ?? 'cost');
        const amount = typeof found.value === 'number' && found.value > 0 ? found.value : 0;
        if (amount > 0) await redis.incrbyfloat(key, amount).then(() => redis.pexpire(key, ttl));
        return { decision: 'allow' };
      }
      const [ok, used] = await TAKE.run<[number, string]>(redis, key, budget.limit, cost ? 0 : 1, ttl);
      if (ok === 1) return { decision: 'allow' };
      const refillsInMs = (window + 1) * budget.windowMs - Date.now();
      return {
        decision: 'deny',
        reason: `budget '${budget.name}' is used up (${Number(used)} of ${budget.limit} ${cost ? 'cost' : 'calls'} in this window); it refills in ${Math.ceil(refillsInMs / 1000)} s`,
      };
    },
  }));
}

function applies(budget: BudgetConfig, message: GovernedMessage): boolean {
  const one = (pattern: string | string[] | undefined, value: string): boolean =>
    pattern === undefined || (Array.isArray(pattern) ? pattern : [pattern]).some((p) => glob(p, value));
  return one(budget.tenant, message.tenant) && one(budget.agent, message.agent);
}

function subjectOf(budget: BudgetConfig, message: GovernedMessage): string {
  switch (budget.per) {
    case 'tenant':
      return message.tenant;
    case 'agent':
      return `${message.tenant}/${message.agent}`;
    case 'principal':
      return `${message.tenant}/${message.principal}/${message.agent}`;
  }
}
