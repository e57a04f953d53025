import { backoffCap, backoffDelay } from './backoff';

const policy = { initialDelayMs: 100, maxDelayMs: 5_000 };

describe('backoffCap', () => {
  it('doubles from the initial delay and stops at the maximum', () => {
    expect([0, 1, 2, 3, 4, 5, 6, 7].map((attempt) => backoffCap(attempt, policy))).toEqual([
      100, 200, 400, 800, 1_600, 3_200, 5_000, 5_000,
    ]);
  });

  it('stays at the maximum for attempts whose power of two overflows', () => {
    expect(backoffCap(2_000, policy)).toBe(5_000);
  });
});

describe('backoffDelay', () => {
  it('spans the whole window [0, cap] (full jitter)', () => {
    expect(backoffDelay(3, policy, () => 0)).toBe(0);
    expect(backoffDelay(3, policy, () => 0.5)).toBe(400);
    expect(backoffDelay(3, policy, () => 0.999_999)).toBe(799);
    expect(backoffDelay(10, policy, () => 0.5)).toBe(2_500);
  });

  it('lies in [0, cap] for random draws, and the cap grows exponentially', () => {
    for (let attempt = 0; attempt < 10; attempt++) {
      const cap = backoffCap(attempt, policy);
      expect(cap).toBe(Math.min(5_000, 100 * 2 ** attempt));
      for (let draw = 0; draw < 200; draw++) {
        const delay = backoffDelay(attempt, policy);
        expect(delay).toBeGreaterThanOrEqual(0);
        expect(delay).toBeLessThanOrEqual(cap);
        expect(Number.isInteger(delay)).toBe(true);
      }
    }
  });
});
