// The floor of the async-task benchmark: a bare BullMQ worker whose processor returns its job's data at
// once. No ledger, no events, no agent. Run as a child process: node bullmq-worker.js <redis-url> <concurrency>
import { Worker } from 'bullmq';
import Redis from 'ioredis';

const [url, concurrencyText] = process.argv.slice(2);
if (!url) throw new Error('usage: bullmq-worker <redis-url> <concurrency>');
const connection = new Redis(url, { maxRetriesPerRequest: null });
const worker = new Worker('floor', async (job) => job.data, {
  connection,
  concurrency: Number(concurrencyText ?? '128'),
  removeOnComplete: { count: 1000 },
});
worker.on('error', (error) => process.stderr.write(`worker error: ${error.message}\n`));
// Exit with the benchmark (the IPC channel closes when it does).
process.on('disconnect', () => process.exit(0));
// A clean exit on SIGTERM, so that a worker under --cpu-prof writes its profile.
process.on('SIGTERM', () => process.exit(0));
