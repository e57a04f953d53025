import { isIP } from 'node:net';
import type { z } from 'zod';
import type { RegionPeer } from './region-peers';
import { GATEWAY_SETTINGS, type Setting, WORKER_SETTINGS } from './settings';

type Settings = typeof GATEWAY_SETTINGS;

/** The gateway's configuration: parsed once at start-up, frozen. */
export type GatewayConfig = {
  readonly [K in keyof Settings]: Settings[K] extends Setting<infer T> ? T : never;
} & {
  /** Whether HTTP agents may target loopback, private and link-local addresses (resolved from "auto"). */
  readonly httpAgentsAllowPrivateResolved: boolean;
};

/** A setting had a value that is not allowed. The message names the variable or flag and what is allowed. */
export class ConfigError extends Error {
  override readonly name = 'ConfigError';
}

/** Where configuration comes from. Flags override the environment. */
export interface ConfigSources {
  env?: Readonly<Record<string, string | undefined>>;
  flags?: Readonly<Record<string, string | undefined>>;
}

/** Whether a listen address is loopback only. */
export function isLoopbackHost(host: string): boolean {
  if (host === 'localhost' || host === '::1') return true;
  return isIP(host) === 4 && host.startsWith('127.');
}

/**
 * Parses the gateway configuration from flags and environment.
 * @throws {ConfigError} naming every bad setting.
 * @example
 * const config = loadGatewayConfig({ env: process.env, flags: { port: '0' } });
 */
export function loadGatewayConfig(sources: ConfigSources = {}): GatewayConfig {
  const { out, problems } = parseSettings(GATEWAY_SETTINGS, sources);
  if (problems.length === 0) {
    if (out.auth === 'apikey' && (out.apiKeys as string[]).length === 0 && out.apiKeySecret === '') {
      problems.push(
        'OPENCLAW_AUTH=apikey needs OPENCLAW_API_KEY_SECRET (for keys made with `openclaw apikey create`) or static keys in OPENCLAW_API_KEYS / --api-keys. ' +
          'Ways out: `openclaw up` runs a whole local stack; `--auth none` runs without authentication (loopback only); ' +
          '`--api-keys <a key of 16 or more characters>` for development; in production, set OPENCLAW_API_KEY_SECRET ' +
          '(the same on every replica, e.g. `openssl rand -hex 32`), start with a static bootstrap key in --api-keys, and make stored keys with `openclaw apikey create`',
      );
    }
    if (out.auth === 'jwt' && out.jwtSecret === '' && out.jwtIssuer === '' && out.jwtJwksUrl === '') {
      problems.push(
        'OPENCLAW_AUTH=jwt needs OPENCLAW_JWT_ISSUER (with or without OPENCLAW_JWT_JWKS_URL) or OPENCLAW_JWT_SECRET',
      );
    }
    problems.push(...regionProblems(out));
    if (out.auth === 'none' && !isLoopbackHost(out.host as string) && out.allowInsecureBind !== true) {
      problems.push(
        `OPENCLAW_HOST / --host: auth "none" only listens on loopback, got ${JSON.stringify(out.host)}; ` +
          'enable authentication or set OPENCLAW_ALLOW_INSECURE_BIND=true',
      );
    }
  }
  if (problems.length > 0) throw new ConfigError(`invalid configuration:\n  ${problems.join('\n  ')}`);
  const allow = out.httpAgentsAllowPrivate as string;
  out.httpAgentsAllowPrivateResolved = allow === 'auto' ? out.auth === 'none' : allow === 'true' || allow === '1';
  return Object.freeze(out) as GatewayConfig;
}

/** What is wrong with the region settings taken together (each is valid alone). */
function regionProblems(out: Record<string, unknown>): string[] {
  const peers = out.regionPeers as RegionPeer[];
  const problems: string[] = [];
  if (peers.length > 0 && (out.region === '' || out.regionSecret === '')) {
    problems.push("OPENCLAW_REGION_PEERS needs OPENCLAW_REGION (this region's name) and OPENCLAW_REGION_SECRET");
  }
  if (peers.some((p) => p.name === out.region)) {
    problems.push(`OPENCLAW_REGION_PEERS names this region ('${String(out.region)}') itself`);
  }
  return problems;
}

/** The worker's configuration: parsed once at start-up, frozen. */
export type WorkerConfig = {
  readonly [K in keyof typeof WORKER_SETTINGS]: (typeof WORKER_SETTINGS)[K] extends Setting<infer T> ? T : never;
};

/**
 * Parses the worker configuration from flags and environment.
 * @throws {ConfigError} naming every bad setting.
 */
export function loadWorkerConfig(sources: ConfigSources = {}): WorkerConfig {
  const { out, problems } = parseSettings(WORKER_SETTINGS, sources);
  if (problems.length === 0) problems.push(...regionProblems(out));
  if (problems.length > 0) throw new ConfigError(`invalid configuration:\n  ${problems.join('\n  ')}`);
  return Object.freeze(out) as WorkerConfig;
}

/** Reads every setting of a table: flag, else environment, else default; collects every problem. */
function parseSettings(
  table: Record<string, Setting<unknown>>,
  sources: ConfigSources,
): { out: Record<string, unknown>; problems: string[] } {
  const env = sources.env ?? {};
  const flags = sources.flags ?? {};
  const out: Record<string, unknown> = {};
  const problems: string[] = [];
  for (const [key, s] of Object.entries(table)) {
    const fromFlag = s.flag === undefined ? undefined : flags[s.flag];
    const fromEnv = env[s.env];
    const source = fromFlag !== undefined ? `--${s.flag}` : fromEnv !== undefined && fromEnv !== '' ? s.env : undefined;
    const text = fromFlag ?? (fromEnv !== undefined && fromEnv !== '' ? fromEnv : undefined);
    const raw = text ?? (typeof s.default === 'function' ? s.default() : s.default);
    const parsed = (s.schema as z.ZodType<unknown, string>).safeParse(raw);
    if (parsed.success) {
      out[key] = parsed.data;
    } else {
      const what = source ?? `default of ${s.env}`;
      problems.push(
        `${what}: ${parsed.error.issues[0]?.message ?? 'invalid'} (got ${JSON.stringify(redact(key, raw))})`,
      );
    }
  }
  return { out, problems };
}

function redact(key: string, raw: string): string {
  return ['apiKeys', 'apiKeySecret', 'jwtSecret', 'auditSecret', 'delegationSecret', 'oauthClientSecret'].includes(key)
    ? '<redacted>'
    : raw;
}
