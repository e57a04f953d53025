import { RE2JS } from 're2js';

/**
 * Regular expressions that come from outside the process (agents' JSON Schemas, governance rules)
 * run here, never on V8's backtracking engine: RE2 (the pure-JS port `re2js`) matches in time linear
 * in the input for a given pattern, so `^(a+)+$` cannot stall the event loop. Linear is not cheap
 * enough on its own (its cost is the input's length times the pattern's compiled size), so every
 * match is charged to a budget, and a check that would go over it is refused rather than run.
 */

/** The longest pattern accepted, in characters. */
export const MAX_PATTERN_LENGTH = 1000;

/** The largest compiled pattern accepted, in RE2 instructions (`a{0,1000}` alone is about 2000). */
export const MAX_PROGRAM_SIZE = 1000;

/**
 * Matching work one check may do, in units of one input character against one instruction of a
 * pattern (what RE2's NFA does at worst). Measured at 10 to 80 ns a unit on a busy 2-core machine,
 * so 250 000 units keep a check near the 10 ms budget of tier 1: a 6-instruction pattern such as
 * `^[a-z0-9-]+$` may see about 41 000 characters of strings in one check.
 */
export const MATCH_BUDGET = 250_000;

/** A pattern that cannot be used: not valid, not supported by a linear-time engine, or too large. */
export class PatternError extends Error {
  override readonly name = 'PatternError';
}

/** A check whose strings are too long for its patterns: matching them would take more than its budget. */
export class MatchBudgetError extends Error {
  override readonly name = 'MatchBudgetError';
  constructor(
    readonly pattern: string,
    readonly chars: number,
  ) {
    super(
      `a string of ${chars} characters is too long to match against the pattern "${shown(pattern)}" within the budget of one check`,
    );
  }
}

/** The budget of the check in progress; outside one, each match is limited alone. */
let current: { left: number } | undefined;

/**
 * Runs a check (synchronous) with a matching budget shared by every {@link LinearRegExp.test} it makes.
 * @throws {MatchBudgetError} from the first match that would go over the budget; nothing is matched then.
 */
export function withinMatchBudget<T>(units: number, check: () => T): T {
  const outer = current;
  current = { left: units };
  try {
    return check();
  } finally {
    current = outer;
  }
}

/**
 * A compiled pattern with ECMAScript syntax (what JSON Schema specifies) that runs on RE2. Patterns
 * RE2 cannot run in linear time (backreferences, lookahead, lookbehind) are refused when compiled.
 *
 * @example
 * const re = compilePattern('^[a-z]+$');
 * re.test('abc'); // true
 * compilePattern('^(a)\\1$'); // throws PatternError: backreferences are not supported
 */
export class LinearRegExp {
  private readonly re: RE2JS;
  /** The compiled program's size in instructions: a match costs up to this much per input character. */
  readonly size: number;

  constructor(readonly source: string) {
    const problem = syntaxProblem(source);
    if (problem) throw new PatternError(`pattern "${shown(source)}" cannot be used: ${problem}`);
    try {
      this.re = RE2JS.compile(RE2JS.translateRegExp(source));
    } catch (error) {
      throw new PatternError(
        `pattern "${shown(source)}" cannot be used: ${re2Reason((error as Error).message)} (patterns run on a linear-time engine, RE2)`,
      );
    }
    this.size = this.re.programSize();
    if (this.size > MAX_PROGRAM_SIZE) {
      throw new PatternError(
        `pattern "${shown(source)}" cannot be used: it compiles to ${this.size} instructions; at most ${MAX_PROGRAM_SIZE}`,
      );
    }
  }

  /**
   * Whether the pattern matches anywhere in `text` (like `RegExp.prototype.test`).
   * @throws {MatchBudgetError} when the match would cost more than the budget has left.
   */
  test(text: string): boolean {
    const cost = (text.length + 1) * this.size;
    const budget = current ?? { left: MATCH_BUDGET };
    if (cost > budget.left) throw new MatchBudgetError(this.source, text.length);
    budget.left -= cost;
    // The matcher's path (one-pass, bit-state or NFA) rather than `test()`'s lazy DFA: its cost is
    // bounded by the charge above, and it keeps no DFA cache (up to 8 MB) per compiled pattern.
    return this.re.matcher(text).find();
  }

  toString(): string {
    return `/${this.source}/`;
  }
}

const compiledPatterns = new Map<string, LinearRegExp>();

/**
 * A pattern compiled once and kept (the same patterns are matched on every message).
 * @throws {PatternError} naming why the pattern cannot be used.
 */
export function compilePattern(source: string): LinearRegExp {
  let re = compiledPatterns.get(source);
  if (!re) {
    re = new LinearRegExp(source);
    if (compiledPatterns.size >= 10_000) compiledPatterns.clear();
    compiledPatterns.set(source, re);
  }
  return re;
}

/** Why a pattern cannot be used, or undefined when it can. */
export function patternProblem(source: string): string | undefined {
  try {
    compilePattern(source);
    return undefined;
  } catch (error) {
    return (error as Error).message;
  }
}

/**
 * An Ajv regular-expression engine (its `code.regExp` option) on {@link compilePattern}: JSON Schema
 * `pattern` and `patternProperties` then run in linear time, charged to the check's budget.
 */
export const linearRegExpEngine = Object.assign((source: string, _flags: string) => compilePattern(source), {
  code: 'linearRegExp',
});

/** A pattern as messages show it: as written, cut after 100 characters. */
function shown(source: string): string {
  return source.length > 100 ? `${source.slice(0, 100)}…` : source;
}

/** What is wrong with a pattern before RE2 sees it: ECMAScript syntax, size, and backreferences. */
function syntaxProblem(source: string): string | undefined {
  if (source.length > MAX_PATTERN_LENGTH)
    return `it is ${source.length} characters long; at most ${MAX_PATTERN_LENGTH}`;
  try {
    // Parses only: V8 compiles (and could backtrack) on the first match, which never comes.
    new RegExp(source, 'u');
  } catch (error) {
    return `not a valid regular expression (${(error as Error).message.replace(/^Invalid regular expression: /, '')})`;
  }
  // RE2 would read `\k<name>` as the letter k: look for backreferences here, outside escapes.
  for (let i = 0; i < source.length; i++) {
    if (source[i] !== '\\') continue;
    const next = source[i + 1] ?? '';
    if ((next >= '1' && next <= '9') || next === 'k') return 'backreferences are not supported';
    i += 1;
  }
  return undefined;
}

/** RE2's error, in words a schema's author can act on. */
function re2Reason(message: string): string {
  if (/`\(\?[=!]/.test(message)) return 'lookahead is not supported';
  if (/`\(\?<[=!]/.test(message)) return 'lookbehind is not supported';
  return message.replace(/^error parsing regexp: /, '');
}
