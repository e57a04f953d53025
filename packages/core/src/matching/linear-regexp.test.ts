import {
  compilePattern,
  LinearRegExp,
  MATCH_BUDGET,
  MAX_PROGRAM_SIZE,
  MatchBudgetError,
  PatternError,
  patternProblem,
  withinMatchBudget,
} from './linear-regexp';

describe('linear-time patterns', () => {
  it('matches ECMAScript syntax the way JSON Schema means it (unanchored, \\u escapes, named groups, [^])', () => {
    expect(compilePattern('^[a-z0-9-]+$').test('billing-eu')).toBe(true);
    expect(compilePattern('^[a-z0-9-]+$').test('Billing')).toBe(false);
    expect(compilePattern('b+').test('abbbc')).toBe(true);
    expect(compilePattern('^caf\\u00e9$').test('café')).toBe(true);
    expect(compilePattern('^(?<year>\\d{4})-\\d{2}$').test('2026-12')).toBe(true);
    expect(compilePattern('^\\p{L}+$').test('Ωmega')).toBe(true);
    expect(compilePattern('^a[^]b$').test('a\nb')).toBe(true);
  });

  it('answers ^(a+)+$ on the classic ReDoS input without backtracking', () => {
    const hostile = `${'a'.repeat(40)}!`;
    const started = performance.now();
    expect(compilePattern('^(a+)+$').test(hostile)).toBe(false);
    expect(compilePattern('^(a+)+$').test('a'.repeat(40))).toBe(true);
    // V8 needs about 2^40 steps for the first: the bound only tells "hung" from "answered".
    expect(performance.now() - started).toBeLessThan(1000);
  });

  it('refuses what RE2 cannot run in linear time, saying why', () => {
    expect(patternProblem('^(a)\\1$')).toBe('pattern "^(a)\\1$" cannot be used: backreferences are not supported');
    expect(patternProblem('^(?<x>a)\\k<x>$')).toBe(
      'pattern "^(?<x>a)\\k<x>$" cannot be used: backreferences are not supported',
    );
    expect(patternProblem('^(?=a)a$')).toBe(
      'pattern "^(?=a)a$" cannot be used: lookahead is not supported (patterns run on a linear-time engine, RE2)',
    );
    expect(patternProblem('(?<!a)b')).toBe(
      'pattern "(?<!a)b" cannot be used: lookbehind is not supported (patterns run on a linear-time engine, RE2)',
    );
    expect(patternProblem('(')).toMatch(/^pattern "\(" cannot be used: not a valid regular expression \(/);
    expect(patternProblem('^[a-z]+$')).toBeUndefined();
    expect(() => new LinearRegExp('(a)\\1')).toThrow(PatternError);
  });

  it('refuses patterns too long or too large to match cheaply', () => {
    expect(patternProblem('a'.repeat(1001))).toBe(
      `pattern "${'a'.repeat(100)}…" cannot be used: it is 1001 characters long; at most 1000`,
    );
    expect(patternProblem('^a{0,1000}$')).toMatch(
      new RegExp(
        `^pattern "\\^a\\{0,1000\\}\\$" cannot be used: it compiles to \\d+ instructions; at most ${MAX_PROGRAM_SIZE}$`,
      ),
    );
    expect(patternProblem('^x{1001}$')).toBe(
      'pattern "^x{1001}$" cannot be used: invalid repeat count: `{1001}` (patterns run on a linear-time engine, RE2)',
    );
  });

  it('charges every match to the budget of its check, and refuses the one that would go over before running it', () => {
    const re = compilePattern('^[a-z]+$');
    const perChar = re.size;
    // Two strings whose cost together is just over the budget: the second is refused.
    const half = 'a'.repeat(Math.floor(MATCH_BUDGET / perChar / 2));
    expect(() =>
      withinMatchBudget(MATCH_BUDGET, () => {
        expect(re.test(half)).toBe(true);
        expect(re.test(half)).toBe(true);
        re.test('abc');
      }),
    ).toThrow(MatchBudgetError);
    // A new check has its budget back; outside a check each match has one of its own.
    expect(withinMatchBudget(MATCH_BUDGET, () => re.test(half))).toBe(true);
    expect(re.test(half)).toBe(true);
    expect(() => re.test('a'.repeat(MATCH_BUDGET))).toThrow(
      `a string of ${MATCH_BUDGET} characters is too long to match against the pattern "^[a-z]+$" within the budget of one check`,
    );
  });
});
