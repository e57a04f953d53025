// Loaded into a server by the idle-connections benchmark (node --expose-gc --require gc-probe.js):
// on SIGUSR2 it collects garbage and writes process.memoryUsage() to BENCH_PROBE_FILE.
import { writeFileSync } from 'node:fs';

process.on('SIGUSR2', () => {
  (globalThis as { gc?: () => void }).gc?.();
  const file = process.env.BENCH_PROBE_FILE;
  if (file) writeFileSync(file, JSON.stringify(process.memoryUsage()));
});
