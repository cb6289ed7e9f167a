import { z } from 'zod';
import { envNameOf, unwrap } from '../config/fields.ts';
import { configSchema } from '../config/schema.ts';

/**
 * `starstream config docs`: the configuration reference, generated from the schema itself (field, env
 * variable, default, description), so the README's table cannot drift from the code.
 */
export function configDocs(): string {
  const rows: string[] = ['| field | env | default | description |', '|---|---|---|---|'];
  walk(configSchema, [], rows);
  return `${rows.join('\n')}\n`;
}

function walk(schema: z.ZodType, path: string[], rows: string[]): void {
  const inner = unwrap(schema);
  if (inner instanceof z.ZodObject) {
    for (const [key, child] of Object.entries(inner.shape as Record<string, z.ZodType>)) walk(child, [...path, key], rows);
    return;
  }
  const env = envNameOf(path);
  rows.push(`| \`${path.join('.')}\` | \`${env}\` | ${defaultOf(schema)} | ${schema.description ?? unwrapDescription(schema) ?? ''} |`);
}


function unwrapDescription(schema: z.ZodType): string | undefined {
  let s: z.ZodType = schema;
  while (s instanceof z.ZodDefault || s instanceof z.ZodPrefault || s instanceof z.ZodOptional) {
    if (s.description) return s.description;
    s = s.unwrap() as z.ZodType;
  }
  return s.description;
}

function defaultOf(schema: z.ZodType): string {
  let s: z.ZodType = schema;
  while (s instanceof z.ZodOptional || s instanceof z.ZodDefault || s instanceof z.ZodPrefault) {
    if (s instanceof z.ZodDefault) return `\`${JSON.stringify(s.def.defaultValue)}\``;
    if (s instanceof z.ZodOptional) return 'unset';
    s = s.unwrap() as z.ZodType;
  }
  return '—';
}
