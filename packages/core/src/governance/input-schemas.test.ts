import type Redis from 'ioredis';
import { compilePattern, MATCH_BUDGET } from '../matching/linear-regexp';
import { inputSchemaValidator, type SchemaStore, schemaProblem } from './input-schemas';
import type { GovernedMessage, ValidatorAnswer } from './validator';

/** A schema store on an in-memory hash per agent (what `hgetall` answers, as ioredis builds it). */
function memoryStore(hashes: Record<string, Record<string, unknown>>): SchemaStore {
  const redis = {
    hgetall: async (key: string) =>
      Object.fromEntries(Object.entries(hashes[key] ?? {}).map(([task, schema]) => [task, JSON.stringify(schema)])),
  };
  return { redis: redis as unknown as Redis, key: (tenant, agent) => `${tenant}/${agent}` };
}

const request = (task: string, data: unknown, agent = 'names'): GovernedMessage => ({
  direction: 'request',
  tenant: 'acme',
  principal: 'apikey:1',
  roles: ['caller'],
  agent,
  task,
  data,
  agents: [],
});

const validatorOf = (store: SchemaStore) =>
  inputSchemaValidator(store, { tier: 1, timeoutMs: 1000, failMode: 'closed', dryRun: false });

describe('input schemas', () => {
  it('refuses at registration a schema whose pattern needs backtracking, naming the pattern and why', () => {
    expect(schemaProblem({ type: 'string', pattern: '^(a)\\1$' })).toBe(
      'pattern "^(a)\\1$" cannot be used: backreferences are not supported',
    );
    expect(schemaProblem({ type: 'object', patternProperties: { '^(?=x)': { type: 'string' } } })).toBe(
      'pattern "^(?=x)" cannot be used: lookahead is not supported (patterns run on a linear-time engine, RE2)',
    );
    expect(schemaProblem({ type: 'string', pattern: '^(a+)+$' })).toBeUndefined();
  });

  it('judges ^(a+)+$ against the classic ReDoS input at once', async () => {
    const validator = validatorOf(
      memoryStore({ 'acme/names': { greet: { properties: { name: { pattern: '^(a+)+$' } } } } }),
    );
    const started = performance.now();
    const answer = await validator.check(request('greet', { name: `${'a'.repeat(30)}!` }));
    expect(answer).toEqual({
      decision: 'deny',
      reason: `the input does not match the schema agent 'names' declared for task 'greet': data.name must match pattern "^(a+)+$"`,
    });
    // Ajv on V8's engine takes about 2^30 steps here (seconds); the bound only tells that from "answered".
    expect(performance.now() - started).toBeLessThan(1000);
    expect(await validator.check(request('greet', { name: 'aaaa' }))).toEqual({ decision: 'allow' });
  });

  it('refuses, without matching, strings too long for the patterns within the budget of one check', async () => {
    const validator = validatorOf(
      memoryStore({
        'acme/names': { greet: { properties: { a: { pattern: '^[a-z]+$' }, b: { pattern: '^[a-z]+$' } } } },
      }),
    );
    const long = 'a'.repeat(MATCH_BUDGET);
    expect(await validator.check(request('greet', { a: long }))).toEqual({
      decision: 'deny',
      reason: `the input cannot be checked against the schema agent 'names' declared for task 'greet': a string of ${MATCH_BUDGET} characters is too long to match against the pattern "^[a-z]+$" within the budget of one check`,
    });
    // The budget is the check's, not each string's: two halves that fit alone do not fit together.
    const half = 'a'.repeat(Math.ceil(MATCH_BUDGET / compilePattern('^[a-z]+$').size / 2));
    expect(await validator.check(request('greet', { a: half }))).toEqual({ decision: 'allow' });
    expect(((await validator.check(request('greet', { a: half, b: half }))) as ValidatorAnswer).decision).toBe('deny');
  });

  it('treats task names like Object members as tasks: allowed without a schema, checked with one', async () => {
    const store = memoryStore({ 'acme/names': { toString: { type: 'object', required: ['x'] } }, 'acme/plain': {} });
    const validator = validatorOf(store);
    for (const task of ['constructor', '__proto__', 'hasOwnProperty', 'valueOf']) {
      expect(await validator.check(request(task, {}))).toEqual({ decision: 'allow' });
      expect(await validator.check(request(task, {}, 'plain'))).toEqual({ decision: 'allow' });
      // Known schemas now: the quick path says the same.
      expect(validator.quickAllow?.(request(task, {}))).toBe(true);
    }
    expect(validator.quickAllow?.(request('toString', {}))).toBe(false);
    expect(await validator.check(request('toString', {}))).toEqual({
      decision: 'deny',
      reason:
        "the input does not match the schema agent 'names' declared for task 'toString': data must have required property 'x'",
    });
    expect(await validator.check(request('toString', { x: 1 }))).toEqual({ decision: 'allow' });
  });
});
