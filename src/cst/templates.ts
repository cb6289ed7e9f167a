import { readFileSync } from 'node:fs';
import { z } from 'zod';
import { ConfigError } from '../errors/index.ts';

/**
 * The CST sentence templates, versioned in `schemas/cst-templates.json`. A STAR model records the version it
 * was trained on and the registry refuses one trained on another (`src/star/registry/manifest.ts`), so any
 * change to a sentence's text or meaning is a new version.
 */

export const TEMPLATE_KEYS = ['cooccurrence', 'neighbours', 'category', 'embedding', 'popularity', 'quiet', 'cold', 'newUser'] as const;
export type TemplateKey = (typeof TEMPLATE_KEYS)[number];

const templateFileSchema = z.object({
  version: z.string().min(1),
  doc: z.string().optional(),
  templates: z.object(Object.fromEntries(TEMPLATE_KEYS.map((k) => [k, z.string().min(1)])) as Record<TemplateKey, z.ZodString>),
});

export interface CstTemplates {
  readonly version: string;
  readonly templates: Readonly<Record<TemplateKey, string>>;
}

export const DEFAULT_TEMPLATE_FILE = new URL('../../schemas/cst-templates.json', import.meta.url);

export function loadCstTemplates(file: URL | string = DEFAULT_TEMPLATE_FILE): CstTemplates {
  let json: unknown;
  try {
    json = JSON.parse(readFileSync(file, 'utf8'));
  } catch (cause) {
    // An unreadable or non-JSON file names the file too (not a bare SyntaxError).
    throw new ConfigError('cst-templates', `cannot read ${String(file)} as JSON: ${(cause as Error).message}`, { cause });
  }
  const parsed = templateFileSchema.safeParse(json);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    throw new ConfigError(`cst-templates.${issue?.path.join('.') ?? ''}`, issue?.message ?? 'invalid', { cause: parsed.error });
  }
  return parsed.data;
}

export type TemplateValues = Readonly<Record<string, string | number>>;

/** Fills `{name}` placeholders. Numbers must already be formatted by the caller (see `fmt`). */
export function render(template: string, values: TemplateValues): string {
  // Split once per template: [text, name, text, name, …, text]; a placeholder with no value stays as written.
  let parts = split.get(template);
  if (!parts) split.set(template, (parts = template.split(/\{(\w+)\}/)));
  let out = parts[0]!;
  for (let p = 1; p < parts.length; p += 2) {
    const value = values[parts[p]!];
    out += (value === undefined ? `{${parts[p]!}}` : String(value)) + parts[p + 1]!;
  }
  return out;
}

/** `render`'s templates, split at their placeholders (a handful of versioned templates per process). */
const split = new Map<string, string[]>();

/** A sentence read back into its template and placeholder values; see `parseSentence`. */
export interface ParsedSentence {
  readonly key: TemplateKey;
  readonly values: Readonly<Record<string, string>>;
}

/**
 * Which template `sentence` is an instance of, and the text each placeholder holds; null when it fits none.
 * The registry uses it to tell sentences of other template versions in a model's parity cases, and the
 * property tests to read the numbers back. Placeholders match lazily, so a title holding the template's
 * literal text could be split differently; numbers never can.
 */
export function parseSentence(sentence: string, templates: CstTemplates): ParsedSentence | null {
  for (const key of TEMPLATE_KEYS) {
    const { pattern, names } = compiled(templates.templates[key]);
    const m = pattern.exec(sentence);
    if (!m) continue;
    const values: Record<string, string> = {};
    names.forEach((name, i) => (values[name] = m[i + 1]!));
    return { key, values };
  }
  return null;
}

const patterns = new Map<string, { pattern: RegExp; names: string[] }>();

function compiled(template: string): { pattern: RegExp; names: string[] } {
  let hit = patterns.get(template);
  if (!hit) {
    const names = [...template.matchAll(/\{(\w+)\}/g)].map((m) => m[1]!);
    const literal = template.split(/\{\w+\}/).map((part) => part.replace(/[.*+?^$()|[\]\\{}]/g, '\\$&'));
    hit = { pattern: new RegExp(`^${literal.join('([\\s\\S]+?)')}$`), names };
    patterns.set(template, hit);
  }
  return hit;
}
