import { ratePoint } from './rates';

const replica = (replicaId: string, ok: number, failed = 0, latency?: { count: number; p50: number; p99: number }) => ({
  replicaId,
  requests: { coordinator: { ok, ...(failed > 0 ? { TIMEOUT: failed } : {}) }, ping: { ok: 1 } },
  ...(latency ? { coordinatorLatencyMs: { ...latency, p90: latency.p99, max: latency.p99 } } : {}),
});

describe('ratePoint', () => {
  it('turns the growth of every replica’s counters into rates per second', () => {
    const point = ratePoint(
      { at: 0, requests: [replica('a', 100), replica('b', 50, 2)] },
      { at: 2000, requests: [replica('a', 140), replica('b', 70, 6)] },
    );
    expect(point.requestsPerSec).toBe((40 + 24) / 2);
    expect(point.errorsPerSec).toBe(4 / 2);
  });

  it('counts nothing for a replica that is new or restarted in the interval', () => {
    const point = ratePoint(
      { at: 0, requests: [replica('a', 1000)] },
      { at: 1000, requests: [replica('a', 10), replica('b', 500)] },
    );
    expect(point.requestsPerSec).toBe(0);
  });

  it('weights p50 by calls and takes the worst p99', () => {
    const point = ratePoint(
      { at: 0, requests: [] },
      {
        at: 1000,
        requests: [
          replica('a', 1, 0, { count: 30, p50: 10, p99: 40 }),
          replica('b', 1, 0, { count: 10, p50: 2, p99: 90 }),
        ],
      },
    );
    expect(point.p50Ms).toBe((10 * 30 + 2 * 10) / 40);
    expect(point.p99Ms).toBe(90);
    expect(ratePoint({ at: 0, requests: [] }, { at: 1, requests: [replica('a', 1)] }).p50Ms).toBeNull();
  });
});
