import { ERROR_CODES, HTTP_STATUS, httpStatusOf, RETRYABLE_BY_DEFAULT } from './error-codes';

describe('HTTP status of error codes', () => {
  it('gives every code a client or server error status, retryable ones a status clients retry on', () => {
    for (const code of ERROR_CODES) {
      expect(HTTP_STATUS[code]).toBeGreaterThanOrEqual(400);
      expect(HTTP_STATUS[code]).toBeLessThan(600);
      if (RETRYABLE_BY_DEFAULT[code]) expect([429, 503, 504]).toContain(HTTP_STATUS[code]);
    }
    expect(httpStatusOf('POLICY_DENIED')).toBe(403);
    expect(httpStatusOf('SOMETHING_NEWER')).toBe(500);
    expect(httpStatusOf('constructor')).toBe(500);
  });
});
