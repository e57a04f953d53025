/**
 * Whether a name matches a glob: `*` stands for any run of characters (none included); every other
 * character stands for itself. No regular expression: a greedy scan that, on a mismatch, moves the
 * last `*` one character on, so a match costs at most the product of the two lengths whatever the
 * pattern (`a*a*a*a*b` included).
 *
 * @example
 * glob('agent:invoke:billing-*', 'agent:invoke:billing-eu'); // true
 */
export function glob(pattern: string, value: string): boolean {
  if (pattern === '*' || pattern === value) return true;
  if (!pattern.includes('*')) return false;
  let p = 0;
  let v = 0;
  // Where the last `*` seen is in the pattern, and where in the value the text it takes ends.
  let star = -1;
  let resume = 0;
  while (v < value.length) {
    if (p < pattern.length && pattern[p] === '*') {
      star = p++;
      resume = v;
    } else if (p < pattern.length && pattern[p] === value[v]) {
      p++;
      v++;
    } else if (star >= 0) {
      p = star + 1;
      v = ++resume;
    } else {
      return false;
    }
  }
  while (p < pattern.length && pattern[p] === '*') p++;
  return p === pattern.length;
}
