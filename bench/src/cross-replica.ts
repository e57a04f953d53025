// Cross-replica request/response: a caller on server A, an echo agent on server B, one Redis, for
// OpenClaw Gateway, Socket.IO 4 with its Redis adapter (the peer) and a bare ws + Redis relay (the
// floor), at several concurrency levels, interleaved in one run. Prints the tables, writes the raw
// results to bench/results/ and the generated part of docs/performance.md.
// Settings (environment): BENCH_WARMUP_MS, BENCH_MEASURE_MS, BENCH_ROUNDS, BENCH_LEVELS (e.g. "1,32,128"),
// BENCH_WRITE_DOC=0 to leave docs/performance.md alone.
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { cpuMs, stopAll, stopGracefully } from './processes';
import { RedisCommandCounter } from './redis-stats';
import { type Cell, type CpuRole, commandMix, costTable, resultsTable, updateDoc } from './report';
import { latency } from './stats';
import {
  CALL_TIMEOUT_MS,
  type Caller,
  ECHO_AGENT_CONCURRENCY,
  OPENCLAW_ENV,
  type RunningSystem,
  startOpenClaw,
  startRelay,
  startSocketIo,
} from './systems';

function envInt(name: string, fallback: number): number {
  const value = Number(process.env[name] ?? fallback);
  if (!Number.isInteger(value) || value < 0) throw new Error(`${name} must be a whole number`);
  return value;
}

const LEVELS = (process.env.BENCH_LEVELS ?? '1,32,128').split(',').map(Number);
const WARMUP_MS = envInt('BENCH_WARMUP_MS', 2000);
const MEASURE_MS = envInt('BENCH_MEASURE_MS', 4000);
const ROUNDS = envInt('BENCH_ROUNDS', 2);
/** `per-call`: each in-flight call has its own caller connection; otherwise all share one. */
const PER_CALL_CALLERS = process.env.BENCH_CALLERS === 'per-call';
/** The request each caller sends; the agent echoes it back as its output. */
const PAYLOAD = { text: 'the quick brown fox jumps over the lazy dog', n: 42, tags: ['a', 'b', 'c'] };
const REPO = path.resolve(__dirname, '..', '..');

interface DriveResult {
  /** Latency (ms) of each request answered inside the window. */
  samples: number[];
  errors: number;
  firstError?: string;
}

/**
 * Keeps `concurrency` requests in flight on the caller for `ms`: each of `concurrency` loops sends
 * its next request as soon as the previous one is answered. Records the latency of every request
 * answered inside the window; `atEnd` runs when the window closes (requests still in flight then are
 * awaited, not counted).
 */
async function drive(
  callers: readonly Pick<Caller, 'request'>[],
  concurrency: number,
  ms: number,
  atEnd?: () => void,
): Promise<DriveResult> {
  const result: DriveResult = { samples: [], errors: 0 };
  const end = performance.now() + ms;
  let ended = false;
  const windowEnds = (): void => {
    ended = true;
    atEnd?.();
  };
  const timer = setTimeout(windowEnds, ms);
  const loop = async (_: unknown, i: number): Promise<void> => {
    const caller = callers[i % callers.length]!;
    while (performance.now() < end) {
      const started = performance.now();
      try {
        await caller.request(PAYLOAD);
        const done = performance.now();
        if (done <= end) result.samples.push(done - started);
      } catch (error) {
        result.errors += 1;
        result.firstError ??= (error as Error).message;
      }
    }
  };
  await Promise.all(Array.from({ length: concurrency }, loop));
  clearTimeout(timer);
  if (!ended) windowEnds();
  return result;
}

/** CPU time (ms) so far of the client process and of each server-side process of a system. */
function cpuSnapshot(system: RunningSystem): Partial<Record<CpuRole, number>> {
  const usage = process.cpuUsage();
  const snapshot: Partial<Record<CpuRole, number>> = { client: (usage.user + usage.system) / 1000 };
  for (const p of system.processes) snapshot[p.role as CpuRole] = cpuMs(p.pid);
  return snapshot;
}

/** One measured window of one system at one concurrency. */
interface Window {
  system: string;
  key: string;
  concurrency: number;
  round: number;
  /** Position of the system in this round's order (0 = measured first). */
  position: number;
  seconds: number;
  completed: number;
  rps: number;
  warmupErrors: number;
  errors: number;
  firstError?: string;
  latency: ReturnType<typeof latency>;
  /** CPU ms used during the window, by process. */
  cpuMs: Partial<Record<CpuRole, number>>;
  redisCommands: Record<string, number>;
  /** What the system's leak check found after the window drained. */
  inspection?: Record<string, number>;
}

async function measure(
  system: RunningSystem,
  counter: RedisCommandCounter,
  concurrency: number,
): Promise<{ window: Omit<Window, 'round' | 'position'>; samples: number[] }> {
  // One caller connection for every loop, or one per loop (BENCH_CALLERS=per-call).
  const callers: Caller[] = PER_CALL_CALLERS
    ? await Promise.all(Array.from({ length: concurrency }, () => system.openCaller()))
    : [system];
  const warmup = await drive(callers, concurrency, WARMUP_MS);
  await counter.reset();
  const before = cpuSnapshot(system);
  let after: Partial<Record<CpuRole, number>> = {};
  let commands: Promise<Record<string, number>> = Promise.resolve({});
  const run = await drive(callers, concurrency, MEASURE_MS, () => {
    after = cpuSnapshot(system);
    commands = counter.read();
  });
  // With nothing in flight, give the last fire-and-forget writes a moment before the leak check.
  let inspection: Record<string, number> | undefined;
  if (system.inspect) {
    await new Promise((resolve) => setTimeout(resolve, 200));
    inspection = await system.inspect(counter.redis);
  }
  if (PER_CALL_CALLERS) for (const caller of callers) caller.close();
  const used: Partial<Record<CpuRole, number>> = {};
  for (const role of Object.keys(before) as CpuRole[]) {
    const a = after[role];
    const b = before[role];
    if (a !== undefined && b !== undefined) used[role] = a - b;
  }
  const seconds = MEASURE_MS / 1000;
  return {
    samples: run.samples,
    window: {
      system: system.name,
      key: system.key,
      concurrency,
      seconds,
      completed: run.samples.length,
      rps: run.samples.length / seconds,
      warmupErrors: warmup.errors,
      errors: run.errors,
      firstError: run.firstError ?? warmup.firstError,
      latency: latency(run.samples),
      cpuMs: used,
      redisCommands: await commands,
      inspection,
    },
  };
}

function toCell(windows: Window[], samples: number[]): Cell {
  const first = windows[0]!;
  const completed = windows.reduce((n, w) => n + w.completed, 0);
  const seconds = windows.reduce((n, w) => n + w.seconds, 0);
  const cpu: Partial<Record<CpuRole, number>> = {};
  for (const role of ['client', 'server A', 'server B', 'redis'] as const) {
    if (windows.every((w) => w.cpuMs[role] !== undefined)) {
      cpu[role] = (windows.reduce((n, w) => n + w.cpuMs[role]!, 0) * 1000) / completed;
    }
  }
  const mix: Record<string, number> = {};
  for (const w of windows) {
    for (const [command, calls] of Object.entries(w.redisCommands)) mix[command] = (mix[command] ?? 0) + calls;
  }
  for (const command of Object.keys(mix)) mix[command] = mix[command]! / completed;
  const errors = windows.reduce((n, w) => n + w.errors + w.warmupErrors, 0);
  return {
    system: first.system,
    key: first.key,
    concurrency: first.concurrency,
    seconds,
    completed,
    rps: completed / seconds,
    latency: latency(samples),
    roundRps: windows.map((w) => w.rps),
    errors,
    firstError: windows.find((w) => w.firstError)?.firstError,
    cpuUsPerRequest: cpu,
    redisCommandsPerRequest: Object.values(mix).reduce((a, b) => a + b, 0),
    redisCommandMix: mix,
    leftAfterDrain: windows.every((w) => w.inspection)
      ? windows.reduce((n, w) => n + (w.inspection?.reservations ?? 0), 0)
      : undefined,
  };
}

function machine(): Record<string, string | number> {
  const run = (command: string, args: string[]): string => {
    try {
      return execFileSync(command, args, { encoding: 'utf8' }).trimEnd();
    } catch {
      return 'unavailable';
    }
  };
  return {
    date: new Date().toISOString(),
    nproc: run('nproc', []),
    freeG: run('free', ['-g']),
    cpuModel: os.cpus()[0]?.model ?? 'unknown',
    node: process.version,
    redis: run('redis-server', ['--version']).match(/v=(\S+)/)?.[1] ?? 'unknown',
    loadAverage1mAtStart: Number(os.loadavg()[0]!.toFixed(2)),
  };
}

function generatedDoc(info: Record<string, string | number>, cells: Cell[]): string {
  const callers = PER_CALL_CALLERS
    ? 'Each in-flight call has its own caller connection (`BENCH_CALLERS=per-call`): at 128 in flight, 128 callers.'
    : 'All in-flight calls share one caller connection.';
  return `${callers} Run of ${info.date}. ${ROUNDS} rounds; in each round, for each concurrency level, each system gets
${WARMUP_MS / 1000} s of warm-up and then ${MEASURE_MS / 1000} s measured, in a rotating order. Each cell is
${(ROUNDS * MEASURE_MS) / 1000} s of measured time: req/s counts the requests answered inside the measured
windows; p50 and p99 are exact (nearest rank) over all of their latencies.

Machine: \`nproc\` = ${info.nproc} (${info.cpuModel}), Node.js ${info.node}, Redis ${info.redis}, 1-minute load
average ${info.loadAverage1mAtStart} at the start. \`free -g\`:

\`\`\`
${info.freeG}
\`\`\`

${resultsTable(cells)}

Where the time goes: CPU time per request of each process, from \`/proc/<pid>/stat\` (10 ms ticks) over
the measured windows ("client" is the benchmark process, which runs both the caller and the echo
agent); Redis commands per request from \`INFO commandstats\`, counting the commands run inside Lua
scripts; p99.9; req/s of each round (the drift); failed requests; and, for OpenClaw, the
tasks agent instances still held once each window had drained, summed over the rounds (each one is a leak).

${costTable(cells)}

Redis commands per request at the highest concurrency:

${commandMix(cells)}`;
}

async function main(): Promise<void> {
  const info = machine();
  process.stderr.write(
    `cross-replica benchmark: levels ${LEVELS.join(', ')}, ${ROUNDS} rounds, warm-up ${WARMUP_MS} ms, measured ${MEASURE_MS} ms\n`,
  );
  // Started one after another, so that start-up does not compete with itself; all stay up, idle when not measured.
  const systems = [await startOpenClaw(), await startSocketIo(), await startRelay()];
  const counters = new Map(systems.map((s) => [s.key, new RedisCommandCounter(s.redisUrl)]));
  const windows: Window[] = [];
  const samples = new Map<string, number[]>();
  try {
    for (let round = 0; round < ROUNDS; round++) {
      for (const [li, level] of LEVELS.entries()) {
        // Rotate the order so drift, and being measured first or last, does not favour one system.
        const order = systems.map((_, i) => systems[(i + round + li) % systems.length]!);
        for (const [position, system] of order.entries()) {
          const { window, samples: got } = await measure(system, counters.get(system.key)!, level);
          windows.push({ ...window, round, position });
          const key = `${system.key}|${level}`;
          const all = samples.get(key) ?? [];
          for (const s of got) all.push(s);
          samples.set(key, all);
          process.stderr.write(
            `round ${round + 1}/${ROUNDS} c=${level} ${system.name}: ${window.rps.toFixed(0)} req/s, p50 ${window.latency.p50.toFixed(2)} ms, p99 ${window.latency.p99.toFixed(2)} ms${window.errors ? `, ${window.errors} errors (${window.firstError})` : ''}\n`,
          );
        }
      }
    }
  } finally {
    for (const system of systems) system.close();
    for (const counter of counters.values()) counter.close();
    // Profiled replicas must exit by themselves to write their profiles.
    if (process.env.BENCH_CPU_PROF) {
      await stopGracefully(systems.slice(0, 2).flatMap((s) => s.processes.filter((p) => p.role !== 'redis')));
    }
    await stopAll();
  }

  const cells: Cell[] = [];
  for (const level of LEVELS) {
    for (const system of systems) {
      const mine = windows.filter((w) => w.key === system.key && w.concurrency === level);
      cells.push(toCell(mine, samples.get(`${system.key}|${level}`) ?? []));
    }
  }
  process.stdout.write(`\n${resultsTable(cells)}\n\n${costTable(cells)}\n\n${commandMix(cells)}\n`);

  const resultsDir = path.join(REPO, 'bench', 'results');
  mkdirSync(resultsDir, { recursive: true });
  const file = path.join(resultsDir, `cross-replica-${String(info.date).replace(/[:.]/g, '-')}.json`);
  const settings = {
    levels: LEVELS,
    rounds: ROUNDS,
    warmupMs: WARMUP_MS,
    measureMs: MEASURE_MS,
    openclawEnv: OPENCLAW_ENV,
    openclawAgentConcurrency: ECHO_AGENT_CONCURRENCY,
    openclawTimeoutMs: CALL_TIMEOUT_MS,
  };
  writeFileSync(file, `${JSON.stringify({ machine: info, settings, payload: PAYLOAD, cells, windows }, null, 2)}\n`);
  process.stderr.write(`raw results: ${path.relative(REPO, file)}\n`);

  if (process.env.BENCH_WRITE_DOC !== '0') {
    const doc = path.join(REPO, 'docs', 'performance.md');
    const existing = existsSync(doc) ? readFileSync(doc, 'utf8') : undefined;
    // One connection per call is a section of its own (npm run bench:per-call).
    const markers = PER_CALL_CALLERS
      ? {
          begin: '<!-- bench:per-call:begin (generated by npm run bench:per-call; edit outside these markers) -->',
          end: '<!-- bench:per-call:end -->',
        }
      : undefined;
    writeFileSync(doc, updateDoc(existing, generatedDoc(info, cells), markers));
    process.stderr.write(`updated: ${path.relative(REPO, doc)}\n`);
  }
}

main().then(
  () => process.exit(0),
  (error: unknown) => {
    process.stderr.write(`benchmark failed: ${(error as Error).stack ?? String(error)}\n`);
    process.exit(1);
  },
);
