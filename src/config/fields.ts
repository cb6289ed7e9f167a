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
