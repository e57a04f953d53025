import { execFile, execFileSync } from 'node:child_process';
import { closeSync, existsSync, openSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { GATEWAY_SETTINGS, WORKER_SETTINGS } from '@openclaw/core';
import { parse } from 'yaml';

const REPO = join(__dirname, '..', '..');
const DEPLOY = join(REPO, 'deploy');
const read = (path: string) => readFileSync(join(DEPLOY, path), 'utf8');

interface Service {
  image?: string;
  build?: { context: string; dockerfile: string };
  command?: string[];
  environment?: Record<string, string>;
  healthcheck?: { test: string[] };
  stop_grace_period?: string;
  ports?: string[];
  volumes?: string[];
  depends_on?: unknown;
  read_only?: boolean;
  networks?: unknown;
}

/** Every environment variable the processes read, from the settings table. */
const KNOWN = new Set(
  [...Object.values(GATEWAY_SETTINGS), ...Object.values(WORKER_SETTINGS)]
    .map((s) => (s as { env?: string }).env)
    .filter((e): e is string => e !== undefined),
);

const seconds = (duration: string): number => {
  const m = /^(\d+)(s|m)$/.exec(duration);
  if (!m) throw new Error(`unreadable duration '${duration}'`);
  return Number(m[1]) * (m[2] === 'm' ? 60 : 1);
};

/**
 * The container files in deploy/, checked without a Docker engine: they parse, and what they say
 * agrees with the code's configuration (settings, ports, health endpoints, drain windows) and with
 * each other (services, networks, the nginx and Prometheus targets).
 */
describe('deploy/: Dockerfile, docker-compose.yml, nginx and Prometheus configuration', () => {
  const compose = parse(read('docker-compose.yml'), { merge: true }) as {
    services: Record<string, Service>;
    volumes: Record<string, unknown>;
  };
  const services = compose.services;
  const gateways = Object.keys(services).filter((n) => n.startsWith('gateway-'));
  const workers = Object.keys(services).filter((n) => n.startsWith('worker-'));

  it('has the cluster: Redis, three replicas behind nginx, two workers, Jaeger and Prometheus', () => {
    expect(gateways).toEqual(['gateway-1', 'gateway-2', 'gateway-3']);
    expect(workers).toEqual(['worker-1', 'worker-2']);
    for (const name of ['redis', 'nginx', 'jaeger', 'prometheus']) expect(services[name]).toBeDefined();
  });

  it('runs Redis with AOF on and no eviction, on a volume', () => {
    const command = services.redis!.command!.join(' ');
    expect(command).toMatch(/--appendonly yes/);
    expect(command).toMatch(/--maxmemory-policy noeviction/);
    expect(services.redis!.volumes).toContain('redis-data:/data');
    expect(compose.volumes).toHaveProperty('redis-data');
  });

  it('configures replicas and workers only with settings the code reads, and they agree', () => {
    for (const name of [...gateways, ...workers]) {
      const s = services[name]!;
      const env = s.environment!;
      for (const key of Object.keys(env)) {
        if (key.startsWith('OTEL_')) continue;
        expect(KNOWN.has(key) ? key : `${name}: ${key} is not a setting`).toBe(key);
      }
      expect(s.build).toEqual({ context: '..', dockerfile: 'deploy/Dockerfile' });
      expect(env.REDIS_URL).toBe('redis://redis:6379');
      expect(env.OTEL_EXPORTER_OTLP_ENDPOINT).toBe('http://jaeger:4318');
      expect(s.read_only).toBe(true);
      // The drain finishes before the engine's SIGKILL.
      const drain = Number(env.OPENCLAW_DRAIN_MS ?? env.OPENCLAW_WORKER_DRAIN_MS) / 1000;
      expect(seconds(s.stop_grace_period!)).toBeGreaterThan(drain);
    }
    const ids = new Set<string>();
    for (const name of gateways) {
      const env = services[name]!.environment!;
      expect(services[name]!.command).toEqual(['gateway', 'start']);
      expect(env.OPENCLAW_HOST).toBe('0.0.0.0');
      expect(env.OPENCLAW_AUTH).toBe('apikey');
      // Each replica its own id; a shared one would make them one replica to the cluster.
      ids.add(env.OPENCLAW_REPLICA_ID!);
      expect(services[name]!.healthcheck!.test).toEqual([
        'CMD',
        'node',
        '/app/deploy/healthcheck.js',
        env.OPENCLAW_PORT,
      ]);
      // nginx's fixed address is the trusted proxy.
      expect(env.OPENCLAW_TRUSTED_PROXIES).toBe(
        (services.nginx!.networks as { openclaw: { ipv4_address: string } }).openclaw.ipv4_address,
      );
    }
    expect(ids.size).toBe(3);
    for (const name of workers) {
      const env = services[name]!.environment!;
      expect(services[name]!.command).toEqual(['worker', 'start']);
      expect(env.OPENCLAW_WORKER_HOST).toBe('0.0.0.0');
      expect(services[name]!.healthcheck!.test).toEqual([
        'CMD',
        'node',
        '/app/deploy/healthcheck.js',
        env.OPENCLAW_WORKER_PORT,
      ]);
    }
    expect(new Set(workers.map((n) => services[n]!.environment!.OPENCLAW_WORKER_ID)).size).toBe(2);
  });

  it('puts nginx in front with the shared nginx.conf and the three replicas as its upstreams', () => {
    const nginx = services.nginx!;
    expect(nginx.volumes).toContain('./nginx/nginx.conf:/etc/nginx/openclaw/nginx.conf:ro');
    const upstream = read('nginx/compose/openclaw-upstream.conf');
    const servers = [...upstream.matchAll(/^\s*server\s+([\w.-]+):(\d+)/gm)].map((m) => `${m[1]}:${m[2]}`);
    expect(servers).toEqual(gateways.map((g) => `${g}:${services[g]!.environment!.OPENCLAW_PORT}`));
    expect(read('nginx/compose/openclaw-listen.conf')).toMatch(/^listen 18789;$/m);
    expect(nginx.ports).toEqual(['18789:18789']);
    const conf = read('nginx/nginx.conf');
    expect(conf).toMatch(/proxy_read_timeout 3600s;/);
    expect(conf).toMatch(/proxy_set_header Upgrade \$http_upgrade;/);
    expect(conf).toMatch(/proxy_next_upstream error timeout http_502 http_503;/);
  });

  it('has an nginx configuration that nginx itself accepts', () => {
    const dir = join(REPO, 'test-artifacts', 'nginx-check');
    execFileSync('mkdir', ['-p', dir]);
    for (const f of ['nginx.conf', 'compose/openclaw-upstream.conf', 'compose/openclaw-listen.conf']) {
      execFileSync('cp', [join(DEPLOY, 'nginx', f), dir]);
    }
    // The compose host names do not resolve here: check with addresses instead.
    const upstream = read('nginx/compose/openclaw-upstream.conf').replace(/gateway-\d/g, '127.0.0.1');
    writeFileSync(join(dir, 'openclaw-upstream.conf'), upstream);
    // nginx opens /dev/stdout for its access log: give it a file, not the test runner's socket.
    const log = openSync(join(dir, 'check.log'), 'w');
    try {
      execFileSync('nginx', ['-t', '-q', '-p', dir, '-c', join(dir, 'nginx.conf')], { stdio: ['ignore', log, log] });
    } catch {
      throw new Error(`nginx -t failed:\n${readFileSync(join(dir, 'check.log'), 'utf8')}`);
    } finally {
      closeSync(log);
    }
  });

  it('scrapes every replica and worker from Prometheus, with a config promtool accepts', () => {
    const config = parse(read('prometheus/prometheus.yml')) as {
      scrape_configs: { job_name: string; static_configs: { targets: string[] }[] }[];
    };
    const targets = (job: string) => config.scrape_configs.find((c) => c.job_name === job)!.static_configs[0]!.targets;
    expect(targets('openclaw-gateway')).toEqual(gateways.map((g) => `${g}:${services[g]!.environment!.OPENCLAW_PORT}`));
    expect(targets('openclaw-worker')).toEqual(
      workers.map((w) => `${w}:${services[w]!.environment!.OPENCLAW_WORKER_PORT}`),
    );
    execFileSync('promtool', ['check', 'config', join(DEPLOY, 'prometheus', 'prometheus.yml')], { stdio: 'pipe' });
  });

  it('exposes Jaeger’s OTLP and UI ports, and links Mission Control to the UI', () => {
    expect(services.jaeger!.ports).toEqual(['16686:16686', '4318:4318']);
    expect(services['gateway-1']!.environment!.OPENCLAW_JAEGER_URL).toBe('http://localhost:16686');
  });

  it('builds one small, non-root image with the CLI as entrypoint and a health check', () => {
    const dockerfile = read('Dockerfile');
    const instructions = dockerfile
      .split('\n')
      .filter((l) => /^[A-Z]+\s/.test(l))
      .map((l) => l.split(/\s+/)[0]);
    // Multi-stage: the compilers and dev dependencies stay in the build stages.
    expect(instructions.filter((i) => i === 'FROM').length).toBeGreaterThanOrEqual(3);
    const final = dockerfile.slice(dockerfile.lastIndexOf('\nFROM '));
    expect(final).not.toMatch(/npm (ci|install)/);
    expect(final).toMatch(/^USER 10001:10001$/m);
    expect(final).toMatch(/^HEALTHCHECK .*CMD \["node", "\/app\/deploy\/healthcheck\.js"\]$/m);
    expect(final).toMatch(/^ENTRYPOINT \["node", "\/app\/packages\/cli\/dist\/bin\.js"\]$/m);
    expect(final).toMatch(/^CMD \["gateway", "start"\]$/m);
    expect(final).toMatch(/^STOPSIGNAL SIGTERM$/m);
    // The young generation is capped (shorter collection pauses); the benchmarks read the same line.
    expect(final).toMatch(/^\s+NODE_OPTIONS="--max-semi-space-size=8" \\$/m);
    // The ports it exposes are the defaults of the settings.
    expect(final).toMatch(
      new RegExp(`^EXPOSE ${GATEWAY_SETTINGS.port.default} ${WORKER_SETTINGS.workerPort.default}$`, 'm'),
    );
    // What it copies exists (from the build context, the repository root).
    for (const m of dockerfile.matchAll(/^COPY (?!--from)(.+) \S+$/gm)) {
      for (const source of m[1]!.split(/\s+/))
        expect(existsSync(join(REPO, source)) ? source : `missing ${source}`).toBe(source);
    }
    expect(existsSync(join(REPO, 'packages', 'cli', 'dist', 'bin.js'))).toBe(true);
    const ignore = readFileSync(join(REPO, '.dockerignore'), 'utf8');
    expect(ignore).toMatch(/^\*\*\/node_modules$/m);
    expect(ignore).toMatch(/^\.git$/m);
  });

  it('has a health check script that tells a live process from a dead one', async () => {
    const { createServer } = await import('node:http');
    const server = createServer((req, res) => res.writeHead(req.url === '/healthz' ? 200 : 404).end());
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const port = (server.address() as { port: number }).port;
    // Asynchronously: the server answering it lives in this process.
    const run = async (p: number) => {
      try {
        await promisify(execFile)(process.execPath, [join(DEPLOY, 'healthcheck.js'), String(p)]);
        return 0;
      } catch (error) {
        return (error as { code: number }).code;
      }
    };
    try {
      expect(await run(port)).toBe(0);
    } finally {
      await new Promise((resolve) => server.close(resolve));
    }
    expect(await run(port)).toBe(1);
  });
});
