// Cross-replica request/response benchmark: caller on replica A, echo agent on replica B, one Redis,
// for OpenClaw Gateway, Socket.IO 4 with its Redis adapter (the peer), and a bare ws + Redis relay
// (the floor), at several concurrency levels, interleaved in one run. Writes docs/performance.md.
import { mkdirSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { type RunStats, summarise } from './stats';
import { type RunningSystem, startOpenClaw, startRelay, startSocketIo } from './systems';

const LEVELS = [1, 32, 128];
const WARMUP_MS = Number(process.env.BENCH_WARMUP_MS ?? 1500);
const MEASURE_MS = Number(process.env.BENCH_MEASURE_MS ?? 4000);
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 2);
const PAYLOAD = { text: 'the quick brown fox jumps over the lazy dog', n: 42 };
const REPO = path.resolve(__dirname, '..', '..');

/** Keeps `concurrency` requests in flight for `ms`; records latencies of those that end inside the window. */
async function drive(system: RunningSystem, concurrency: number, ms: number, samples?: number[]): Promise<number> {
  const end = performance.now() + ms;
  let errors = 0;
  const worker = async (): Promise<void> => {
    while (performance.now() < end) {
      const started = performance.now();
      try {
        await system.request(PAYLOAD);
        const done = performance.now();
        if (samples && done <= end) samples.push(done - started);
      } catch {
        errors += 1;
      }
    }
  };
  await Promise.all(Array.from({ length: concurrency }, worker));
  return errors;
}

interface Row {
  system: string;
  concurrency: number;
  stats: RunStats;
  roundRps: number[];
  errors: number;
}

async function main(): Promise<void> {
  const systems = [await startOpenClaw(), await startSocketIo(), await startRelay()];
  const samples = new Map<string, number[]>();
  const roundRps = new Map<string, number[]>();
  const errors = new Map<string, number>();
  try {
    for (let round = 0; round < ROUNDS; round++) {
      for (const [li, level] of LEVELS.entries()) {
        // Rotate the order so drift and warm caches do not favour one system.
        const order = systems.map((_, i) => systems[(i + round + li) % systems.length]!);
        for (const system of order) {
          const key = `${system.name}|${level}`;
          await drive(system, level, WARMUP_MS);
          const got: number[] = [];
          const failed = await drive(system, level, MEASURE_MS, got);
          samples.set(key, [...(samples.get(key) ?? []), ...got]);
          roundRps.set(key, [...(roundRps.get(key) ?? []), got.length / (MEASURE_MS / 1000)]);
          errors.set(key, (errors.get(key) ?? 0) + failed);
          process.stderr.write(
            `round ${round + 1}/${ROUNDS} c=${level} ${system.name}: ${(got.length / (MEASURE_MS / 1000)).toFixed(0)} req/s\n`,
          );
        }
      }
    }
  } finally {
    await Promise.allSettled(systems.map((s) => s.stop()));
  }
  const rows: Row[] = [];
  for (const level of LEVELS) {
    for (const system of systems) {
      const key = `${system.name}|${level}`;
      rows.push({
        system: system.name,
        concurrency: level,
        stats: summarise(samples.get(key) ?? [], (ROUNDS * MEASURE_MS) / 1000),
        roundRps: roundRps.get(key) ?? [],
        errors: errors.get(key) ?? 0,
      });
    }
  }
  const table = renderTable(rows);
  process.stdout.write(`${table}\n`);
  const machine = {
    date: new Date().toISOString(),
    node: process.version,
    cpus: os.cpus().length,
    cpuModel: os.cpus()[0]?.model ?? 'unknown',
    memoryGiB: Math.round(os.totalmem() / 2 ** 30),
    warmupMs: WARMUP_MS,
    measureMs: MEASURE_MS,
    rounds: ROUNDS,
  };
  mkdirSync(path.join(REPO, 'bench', 'results'), { recursive: true });
  writeFileSync(
    path.join(REPO, 'bench', 'results', `cross-replica-${machine.date.replace(/[:.]/g, '-')}.json`),
    `${JSON.stringify({ machine, rows }, null, 2)}\n`,
  );
  if (process.env.BENCH_WRITE_DOC !== '0')
    writeFileSync(path.join(REPO, 'docs', 'performance.md'), renderDoc(machine, table));
}

function renderTable(rows: Row[]): string {
  const lines = [
    '| system | concurrency | req/s | p50 ms | p99 ms | req/s by round | errors | OpenClaw ÷ Socket.IO req/s |',
    '|---|---:|---:|---:|---:|---|---:|---:|',
  ];
  for (const row of rows) {
    const peer = rows.find((r) => r.concurrency === row.concurrency && r.system.startsWith('Socket.IO'));
    const ratio = row.system.startsWith('OpenClaw') && peer ? (row.stats.rps / peer.stats.rps).toFixed(2) : '';
    lines.push(
      `| ${row.system} | ${row.concurrency} | ${row.stats.rps.toFixed(0)} | ${row.stats.p50.toFixed(2)} | ${row.stats.p99.toFixed(2)} | ${row.roundRps.map((r) => r.toFixed(0)).join(', ')} | ${row.errors} | ${ratio} |`,
    );
  }
  return lines.join('\n');
}

function renderDoc(machine: Record<string, unknown>, table: string): string {
  return `# Performance

Measured by \`npm run bench\` (bench/src/cross-replica.ts). Numbers from one run on the machine below;
they are relative: the same run measures every system, interleaved, so a noisy machine affects all of
them alike. Compare ratios within a table, not absolute numbers across machines.

## Cross-replica request/response

A caller connected to replica A sends a request to an echo agent connected to replica B; the agent's
answer travels back to the caller. Both replicas share one \`redis-server\` of the benchmark's own (no
persistence). Each system runs as real separate processes:

- **OpenClaw Gateway**: two \`openclaw gateway start\` replicas; the caller sends \`coordinator\` frames,
  the agent is registered with a high \`concurrency\` and answers \`task.result\`. The per-connection
  request rate limit and in-flight cap are lifted (\`OPENCLAW_RATE_LIMIT\`, \`OPENCLAW_RATE_BURST\`,
  \`OPENCLAW_MAX_IN_FLIGHT\`), since the caller is one connection sending as fast as it can.
  Everything else is the production path: schema validation, the Lua pick with its reservation,
  the task record writes, the deadline timer, one publish to the holder's inbox and one back.
- **Socket.IO 4 + @socket.io/redis-adapter** (the peer): two Socket.IO servers; the request goes to the
  agent's room and the result to the caller's socket id, both through the adapter; websocket
  transport only.
- **bare ws + Redis relay** (the floor): two minimal relay processes, one inbox channel each, no
  validation, no deadlines, no records: what the network path alone costs.

The caller keeps *concurrency* requests in flight on one connection; clients run in one process.
Each cell: ${machine.rounds} rounds of ${Number(machine.warmupMs) / 1000} s warm-up and ${Number(machine.measureMs) / 1000} s measured, rounds and systems interleaved;
req/s is over all measured windows, p50 and p99 are exact over all samples.

Machine: ${machine.cpus} cores (${machine.cpuModel}), ${machine.memoryGiB} GiB, Node.js ${machine.node}, ${machine.date}.

${table}

## Reading
`;
}

main().catch((error: unknown) => {
  process.stderr.write(`bench failed: ${(error as Error).stack ?? String(error)}\n`);
  process.exit(1);
});
