import Ajv, { type ValidateFunction } from 'ajv';
import { TIMINGS } from '../config/timings';
import {
  linearRegExpEngine,
  MATCH_BUDGET,
  MatchBudgetError,
  PatternError,
  withinMatchBudget,
} from '../matching/linear-regexp';
import type { RedisClient } from '../redis/redis-connection';
import type { Validator, ValidatorAnswer } from './validator';

/** Where agents' input schemas are kept: one hash per agent (task name → JSON Schema text). */
export interface SchemaStore {
  redis: RedisClient;
  key(tenant: string, agent: string): string;
}

const MAX_CACHED = 10_000;

// Agents' `pattern` and `patternProperties` run on the linear-time engine, never on V8's backtracking
// one; a pattern it cannot run is refused when the agent registers. `allowMatchingProperties` keeps
// Ajv from testing a schema's own property names against its patterns with `new RegExp` at compile.
const ajv = new Ajv({
  allErrors: false,
  strict: false,
  allowMatchingProperties: true,
  code: { regExp: linearRegExpEngine },
});
const compiled = new Map<string, ValidateFunction>();

/**
 * Checks that a value is a usable JSON Schema, its patterns included (each must run on the linear-time
 * engine: no backreferences or lookaround, at most 1000 characters; see `linear-regexp.ts`).
 * @returns the compile error's message, or undefined.
 */
export function schemaProblem(schema: unknown): string | undefined {
  if (typeof schema !== 'object' || schema === null || Array.isArray(schema)) return 'a JSON Schema is an object';
  try {
    compile(JSON.stringify(schema));
    return undefined;
  } catch (error) {
    return (error as Error).message;
  }
}

function compile(text: string): ValidateFunction {
  let fn = compiled.get(text);
  if (!fn) {
    fn = ajv.compile(JSON.parse(text) as object);
    if (compiled.size >= MAX_CACHED) compiled.clear();
    compiled.set(text, fn);
  }
  return fn;
}

/** Stores the input schemas an agent declared when it registered (the last registration wins). */
export async function storeSchemas(
  store: SchemaStore,
  tenant: string,
  agent: string,
  schemas: Record<string, unknown>,
): Promise<void> {
  const key = store.key(tenant, agent);
  const fields = Object.fromEntries(Object.entries(schemas).map(([task, schema]) => [task, JSON.stringify(schema)]));
  await store.redis.multi().del(key).hset(key, fields).exec();
}

/**
 * Tier 1 validator `input-schema`: a request whose data does not match the JSON Schema its agent
 * declared for the task is refused before it is routed, with the first mismatch named.
 */
export function inputSchemaValidator(store: SchemaStore, settings: Omit<Validator, 'name' | 'check'>): Validator {
  // Stale-while-revalidate: after the first read of an agent's schemas, checks never wait for Redis;
  // a stale entry is used as it is while a refresh runs in the background. Task names are the
  // client's: a Map, so `constructor` or `__proto__` is a task like any other, not a member of Object.
  const cache = new Map<string, { schemas: Map<string, string>; until: number }>();
  const loading = new Map<string, Promise<Map<string, string>>>();
  const load = (key: string): Promise<Map<string, string>> => {
    let pending = loading.get(key);
    if (!pending) {
      pending = store.redis
        .hgetall(key)
        .then((fields) => {
          const schemas = new Map(Object.entries(fields));
          if (cache.size >= MAX_CACHED) cache.clear();
          cache.set(key, { schemas, until: Date.now() + TIMINGS.inputSchemaCacheMs });
          return schemas;
        })
        .finally(() => loading.delete(key));
      loading.set(key, pending);
    }
    return pending;
  };
  return {
    name: 'input-schema',
    ...settings,
    directions: ['request'],
    quickAllow(message) {
      // The agent's schemas are known here and there is none for this task.
      const hit = cache.get(store.key(message.tenant, message.agent));
      if (!hit) return false;
      if (hit.until <= Date.now()) load(store.key(message.tenant, message.agent)).catch(() => undefined);
      return !hit.schemas.has(message.task);
    },
    check(message) {
      if (message.direction !== 'request') return { decision: 'allow' };
      const judge = (schemas: Map<string, string>): ValidatorAnswer => {
        const text = schemas.get(message.task);
        if (text === undefined) return { decision: 'allow' };
        let validate: ValidateFunction;
        let valid: boolean;
        try {
          validate = compile(text);
          valid = withinMatchBudget(MATCH_BUDGET, () => validate(message.data) as boolean);
        } catch (error) {
          // A schema stored before its patterns were refused at registration, or strings too long for
          // its patterns: the input cannot be checked, so it does not pass.
          if (!(error instanceof MatchBudgetError || error instanceof PatternError)) throw error;
          return {
            decision: 'deny',
            reason: `the input cannot be checked against the schema agent '${message.agent}' declared for task '${message.task}': ${error.message}`,
          };
        }
        if (valid) return { decision: 'allow' };
        const first = validate.errors?.[0];
        const where = first?.instancePath ? `data${first.instancePath.replace(/\//g, '.')}` : 'data';
        return {
          decision: 'deny',
          reason: `the input does not match the schema agent '${message.agent}' declared for task '${message.task}': ${where} ${first?.message ?? 'is invalid'}`,
        };
      };
      const key = store.key(message.tenant, message.agent);
      const hit = cache.get(key);
      // Known schemas are checked at once (no wait, no timer); stale ones are refreshed meanwhile.
      if (hit) {
        if (hit.until <= Date.now()) load(key).catch(() => undefined);
        return judge(hit.schemas);
      }
      return load(key).then(judge);
    },
  };
}
