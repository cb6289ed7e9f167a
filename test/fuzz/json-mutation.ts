import fc from 'fast-check';

/**
 * Mutations of a valid JSON document for the fuzz suites: one value replaced by any JSON value (or a hostile
 * one: NaN-like text, huge numbers, deep nesting), or a key removed. What a broken or malicious writer of a
 * manifest or a parity file produces.
 */

type Json = null | boolean | number | string | Json[] | { [key: string]: Json };

/** Every path into `value` (the root included as []). */
export function jsonPaths(value: Json, prefix: (string | number)[] = [], out: (string | number)[][] = []): (string | number)[][] {
  out.push(prefix);
  if (Array.isArray(value)) value.forEach((v, i) => jsonPaths(v, [...prefix, i], out));
  else if (value !== null && typeof value === 'object') for (const [k, v] of Object.entries(value)) jsonPaths(v, [...prefix, k], out);
  return out;
}

const hostileValue: fc.Arbitrary<Json> = fc.oneof(
  fc.jsonValue({ maxDepth: 2 }) as fc.Arbitrary<Json>,
  fc.constantFrom<Json>('NaN', 'Infinity', -0, 1e308, -1e308, 2 ** 53 + 1, 0.1, -1, '', '\u0000', '../../etc/passwd', '<cand>', '[SEP]', [], {}),
  fc.integer({ min: 1, max: 200 }).map((n) => {
    let v: Json = 1;
    for (let i = 0; i < n; i++) v = [v];
    return v;
  }),
);

export interface JsonMutation {
  readonly at: number;
  readonly op: 'replace' | 'delete';
  readonly value: Json;
}

export const jsonMutation: fc.Arbitrary<JsonMutation> = fc.record({
  at: fc.nat(),
  op: fc.constantFrom('replace' as const, 'delete' as const),
  value: hostileValue,
});

export function applyJsonMutations(doc: unknown, mutations: readonly JsonMutation[]): unknown {
  let root = structuredClone(doc) as Json;
  for (const m of mutations) {
    const paths = jsonPaths(root);
    const path = paths[m.at % paths.length]!;
    // A copy: placing the generated value itself let a later mutation put it inside itself (a cycle).
    const value = structuredClone(m.value);
    if (path.length === 0) {
      root = value;
      continue;
    }
    const parent = path.slice(0, -1).reduce<Json>((node, k) => (node as Record<string | number, Json>)[k]!, root) as Record<string | number, Json> | Json[];
    const key = path.at(-1)!;
    if (m.op === 'delete' && Array.isArray(parent)) parent.splice(Number(key), 1);
    else if (m.op === 'delete') delete (parent as Record<string, Json>)[key];
    else (parent as Record<string | number, Json>)[key] = value;
  }
  return root;
}
