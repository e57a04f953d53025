/**
 * Starts OpenTelemetry before anything else is loaded (when the `OTEL_*` environment asks for it), so
 * the modules loaded after it, ioredis among them, are instrumented. Imported first by `bin.ts`; it
 * reaches into core's tracing module directly, because core's index would load ioredis first.
 */
import { startTracing } from '@openclaw/core/tracing';

const [, , command, sub] = process.argv;
const service =
  command === 'gateway' && sub === 'start'
    ? 'openclaw-gateway'
    : command === 'worker' && sub === 'start'
      ? 'openclaw-worker'
      : command === 'up'
        ? 'openclaw'
        : 'openclaw-cli';
startTracing(service);
