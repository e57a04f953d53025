/** The value at a dotted path (`order.items.0.price`). */
export function valueAt(data: unknown, path: string): { found: boolean; value: unknown } {
  let current: unknown = data;
  for (const part of path.split('.')) {
    if (current === null || typeof current !== 'object' || !Object.hasOwn(current, part)) {
      return { found: false, value: undefined };
    }
    current = (current as Record<string, unknown>)[part];
  }
  return { found: true, value: current };
}

/** A copy of `data` with the values at `paths` replaced by `"[redacted]"`. */
export function maskPaths(data: unknown, paths: readonly string[]): unknown {
  const copy = structuredClone(data);
  for (const path of paths) {
    const parts = path.split('.');
    let current: unknown = copy;
    // Own fields only: `constructor.name` must not walk into Object.
    for (let i = 0; i < parts.length - 1; i++) {
      current = valueAt(current, parts[i]!).value;
    }
    const last = parts.at(-1)!;
    if (current !== null && typeof current === 'object' && Object.hasOwn(current, last)) {
      (current as Record<string, unknown>)[last] = '[redacted]';
    }
  }
  return copy;
}
