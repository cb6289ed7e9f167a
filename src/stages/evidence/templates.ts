import { readFileSync } from 'node:fs';
import { z } from 'zod';
import { ConfigError } from '../../errors/index.ts';

/** The CST sentence templates, versioned in `schemas/cst-templates.json`. */

export const TEMPLATE_KEYS = ['cooccurrence', 'neighbours', 'category', 'embedding', 'popularity', 'cold'] as const;
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

export const DEFAULT_TEMPLATE_FILE = new URL('../../../schemas/cst-templates.json', import.meta.url);

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
  return template.replace(/\{(\w+)\}/g, (whole, name: string) => {
    const value = values[name];
    return value === undefined ? whole : String(value);
  });
}

/**
 * Number formats shared by every sentence, so that the TypeScript server and the Python trainer print the
 * same digits: integers plainly, ratios with two decimals, shares as whole percents. Rounding is
 * `Math.round` (half up, towards +∞) of the binary value scaled by 100, which the Python port mirrors as
 * `math.floor(x * 100 + 0.5)`; so `fixed2(1.005)` is `1.00` on both sides.
 */
export const fmt = {
  int: (x: number): string => String(Math.round(x)),
  fixed2: (x: number): string => (Math.round(x * 100) / 100).toFixed(2),
  percent: (share: number): string => `${Math.round(share * 100)}%`,
};

const MAX_TITLE_LENGTH = 80;
// eslint-disable-next-line no-control-regex
const UNSAFE = /[\u0000-\u001f\u007f<>{}"[\]]/g;

/**
 * Item titles are untrusted: strip control characters and the characters the prompt uses for structure
 * (`<>` of markers, `[]` of the tokenizer's special tokens such as `[SEP]`, `{}` of placeholders, `"` of
 * quotes), and bound the length. What remains is data.
 */
export function sanitiseTitle(title: string | null, fallbackId: string): string {
  const text = (title ?? '').replace(UNSAFE, ' ').replace(/\s+/g, ' ').trim();
  const bounded = text.length > MAX_TITLE_LENGTH ? `${text.slice(0, MAX_TITLE_LENGTH - 1)}…` : text;
  return bounded.length > 0 ? bounded : `item ${fallbackId.replace(UNSAFE, '')}`;
}
