// The one nesting bound for JSON values that enter Gaffer (payloads, results,
// progress; over HTTP and over the worker socket), checked before anything
// recurses over them: hashing, serialising, storing. The walk is iterative, so
// a value nested far deeper than the call stack allows is measured safely.

/**
 * Whether `value` nests arrays and objects more than `maxLevels` deep. A
 * scalar is at level 0, `[1]` at 1, `{"a": [1]}` at 2. Stops at the first
 * value past the bound. A cyclic value (never JSON) counts as too deep.
 */
export function exceedsJsonDepth(value: unknown, maxLevels: number): boolean {
  const stack: { v: object; level: number }[] = [];
  if (typeof value === 'object' && value !== null) stack.push({ v: value, level: 1 });
  while (stack.length > 0) {
    const { v, level } = stack.pop()!;
    if (level > maxLevels) return true;
    const children: unknown[] = Array.isArray(v) ? v : Object.values(v);
    for (const c of children) {
      if (typeof c === 'object' && c !== null) stack.push({ v: c, level: level + 1 });
    }
  }
  return false;
}
