import { GatewayError } from '@openclaw/protocol';
import type { RedisClient } from '../redis/redis-connection';

/**
 * Runs a registry operation on Redis; a Redis that is not ready, or that fails the operation, is
 * reported as `UNAVAILABLE` (a {@link GatewayError} raised by the operation itself passes as it is).
 * @throws {GatewayError} `UNAVAILABLE` when Redis cannot be reached.
 * @internal
 */
export async function guarded<T>(redis: RedisClient, operation: () => Promise<T>): Promise<T> {
  if (redis.status !== 'ready') {
    throw new GatewayError('UNAVAILABLE', 'the cluster registry (Redis) is unavailable; retry shortly');
  }
  try {
    return await operation();
  } catch (error) {
    if (error instanceof GatewayError) throw error;
    throw new GatewayError('UNAVAILABLE', 'the cluster registry (Redis) is unavailable; retry shortly', {
      cause: error,
    });
  }
}

/**
 * Tasks as the scripts match them: newline-delimited on both ends; empty for any task.
 * @internal
 */
export function encodeTasks(tasks: readonly string[]): string {
  return tasks.length === 0 ? '' : `\n${tasks.join('\n')}\n`;
}
