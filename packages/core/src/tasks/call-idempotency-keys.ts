import { createHash } from 'node:crypto';
import { GatewayError } from '@openclaw/protocol';
import { TIMINGS } from '../config/timings';
import type { CallRecords } from './call-records';
import type { DispatchRequest, ReplayedCall } from './dispatch-request';

/**
 * The idempotency keys of sync calls, next to their records: a key (per tenant and principal) names
 * the task of the first call made with it for as long as call records are kept, so a repeated call
 * gets that call's result instead of running again.
 */
export class CallIdempotencyKeys {
  constructor(private readonly store: CallRecords) {}

  /**
   * Claims an idempotency key for a new task. @returns the earlier call's result if it completed.
   * @throws {GatewayError} `CONFLICT` (retryable) while the earlier call is in flight.
   */
  async claim(
    request: Pick<DispatchRequest, 'caller' | 'idempotencyKey'>,
    taskId: string,
  ): Promise<ReplayedCall | undefined> {
    const digest = createHash('sha256')
      .update(`${request.caller.tenant}\n${request.caller.principal}\n${request.idempotencyKey}`)
      .digest('hex')
      .slice(0, 32);
    const key = this.store.keys.idempotency(digest);
    for (let attempt = 0; attempt < 3; attempt++) {
      const claimed = await this.store.redis
        .set(key, taskId, 'PX', TIMINGS.syncIdempotencyTtlMs, 'NX')
        .catch((error: unknown) => {
          throw new GatewayError('UNAVAILABLE', 'the task store (Redis) is unavailable; retry shortly', {
            cause: error,
          });
        });
      if (claimed === 'OK') return undefined;
      const earlierId = await this.store.redis.get(key);
      const earlier = earlierId ? await this.store.get(earlierId) : undefined;
      if (earlier?.status === 'completed') return { taskId: earlier.taskId, output: earlier.output ?? null };
      if (earlier && (earlier.status === 'working' || earlier.status === 'submitted')) {
        throw new GatewayError('CONFLICT', 'a call with this idempotencyKey is still in flight', {
          retryable: true,
          retryAfterMs: 500,
          details: { taskId: earlier.taskId },
        });
      }
      // The earlier call failed, was canceled, or its record is gone: this call may run.
      await this.store.redis.del(key);
    }
    throw new GatewayError('CONFLICT', 'the idempotencyKey is contended; retry', {
      retryable: true,
      retryAfterMs: 100,
    });
  }
}
