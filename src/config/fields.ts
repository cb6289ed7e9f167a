import { z } from 'zod';
import { configSchema } from './schema.ts';

/** Walks the config schema: what the env loader and the docs generator need to know about a field. */

/** The schema inside `.default()`, `.prefault()` and `.optional()` wrappers. */
export function unwrap(schema: z.ZodType): z.ZodType {
  let s: z.ZodType = schema;
  while (s instanceof z.ZodDefault || s instanceof z.ZodPrefault || s instanceof z.ZodOptional) s = s.unwrap() as z.ZodType;
  return s;
}

/** The (wrapped) schema of the field at `path`, or undefined when the config has no such field. */
export function fieldAt(path: readonly string[]): z.ZodType | undefined {
  let node: z.ZodType = configSchema;
  for (const key of path) {
    const inner = unwrap(node);
    if (!(inner instanceof z.ZodObject)) return undefined;
    const child = (inner.shape as Record<string, z.ZodType>)[key];
    if (!child) return undefined;
    node = child;
  }
  return node;
}

/** True when the field at `path` holds text, so an env value like `2024` must stay a string. */
export function isStringField(path: readonly string[]): boolean {
  const field = fieldAt(path);
  return field !== undefined && unwrap(field) instanceof z.ZodString;
}

/** The names of the fields directly under `path` (an object of the schema), or [] when there is none. */
export function fieldNamesAt(path: readonly string[]): string[] {
  const node = path.length === 0 ? configSchema : fieldAt(path);
  const inner = node ? unwrap(node) : undefined;
  return inner instanceof z.ZodObject ? Object.keys(inner.shape as Record<string, z.ZodType>) : [];
}

/** The env variable that sets the field at `path`: `eventLog.kafka.brokers` → `STARSTREAM_EVENT_LOG__KAFKA__BROKERS`. */
export function envNameOf(path: readonly string[]): string {
  return `STARSTREAM_${path.map((p) => p.replace(/[A-Z]/g, (c) => `_${c}`).toUpperCase()).join('__')}`;
}

/**
 * The candidate closest to `word` by edit distance (case-insensitive), when it is close enough to be a likely
 * typo: at most a third of the word's length, and at least 1. Used for "did you mean" hints on flags and fields.
 */
export function nearestName(word: string, candidates: readonly string[]): string | undefined {
  const limit = Math.max(1, Math.floor(word.length / 3));
  let best: string | undefined;
  let bestDistance = Infinity;
  for (const candidate of candidates) {
    const d = editDistance(word.toLowerCase(), candidate.toLowerCase());
    if (d < bestDistance) {
      best = candidate;
      bestDistance = d;
    }
  }
  return bestDistance <= limit ? best : undefined;
}

/** Levenshtein distance, with a transposition counting as one edit (`dimensoin` is one edit from `dimension`). */
function editDistance(a: string, b: string): number {
  const rows = Array.from({ length: a.length + 1 }, (_, i) => Array.from({ length: b.length + 1 }, (_, j) => (i === 0 ? j : j === 0 ? i : 0)));
  for (let i = 1; i <= a.length; i++) {
    for (let j = 1; j <= b.length; j++) {
      const cost = a[i - 1] === b[j - 1] ? 0 : 1;
      let d = Math.min(rows[i - 1]![j]! + 1, rows[i]![j - 1]! + 1, rows[i - 1]![j - 1]! + cost);
      if (i > 1 && j > 1 && a[i - 1] === b[j - 2] && a[i - 2] === b[j - 1]) d = Math.min(d, rows[i - 2]![j - 2]! + 1);
      rows[i]![j] = d;
    }
  }
  return rows[a.length]![b.length]!;
}
