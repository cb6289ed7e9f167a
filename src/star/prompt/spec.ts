import { readFileSync } from 'node:fs';
import { z } from 'zod';
import { ConfigError } from '../../errors/index.ts';

/**
 * The STAR prompt spec (`schemas/prompt-template.json`): how one candidate of a case becomes the model's text
 * and numeric side input. Versioned; a model's `star.json` names the version it was trained on. The Python
 * trainer reads the same file (`train/starstream_train/prompt.py`).
 */

export const FEATURE_TRANSFORMS = ['log1p', 'log', 'identity'] as const;
export type FeatureTransform = (typeof FEATURE_TRANSFORMS)[number];

export const TRUNCATION_DROPS = ['history', 'evidence', 'user'] as const;
export type TruncationDrop = (typeof TRUNCATION_DROPS)[number];

/** Feature names the spec may use: candidate features by name, user fields as `user.<name>`. */
export const FEATURE_NAMES = [
  'cooccurrence',
  'cooccurrenceRecent',
  'cooccurringRecentItems',
  'neighbourEngagement',
  'embeddingScore',
  'popularity',
  'recentPopularity',
  'trend',
  'categoryFit',
  'user.interactionCount',
] as const;
export type FeatureName = (typeof FEATURE_NAMES)[number];

const specSchema = z.object({
  version: z.string().min(1),
  doc: z.string().optional(),
  cstTemplateVersion: z.string().min(1),
  separator: z.string().min(1).regex(/^\s+$/, 'must be whitespace, so segments tokenize independently'),
  segments: z.object({
    candidate: z.string().min(1),
    candidateNoCategories: z.string().min(1),
    evidence: z.string().min(1),
    user: z.string().min(1),
    userNoMix: z.string().min(1),
    history: z.string().min(1),
  }),
  limits: z.object({
    maxCategories: z.number().int().nonnegative(),
    maxMixCategories: z.number().int().nonnegative(),
    maxSentences: z.number().int().nonnegative(),
    maxHistoryItems: z.number().int().nonnegative(),
  }),
  truncation: z.object({
    doc: z.string().optional(),
    steps: z.array(z.object({ drop: z.enum(TRUNCATION_DROPS), keep: z.number().int().nonnegative() })),
  }),
  features: z.object({
    doc: z.string().optional(),
    columns: z.array(z.object({ name: z.enum(FEATURE_NAMES), transform: z.enum(FEATURE_TRANSFORMS) })).min(1),
  }),
});

export type PromptSpec = z.infer<typeof specSchema>;

export const DEFAULT_PROMPT_FILE = new URL('../../../schemas/prompt-template.json', import.meta.url);

/** Reads and validates a prompt spec; a bad file is a `ConfigError` naming the first bad field. */
export function loadPromptSpec(file: URL | string = DEFAULT_PROMPT_FILE): PromptSpec {
  return parsePromptSpec(readJson(file, String(file)), String(file));
}

/** An unreadable or non-JSON file is a `ConfigError` naming the file too (not a bare SyntaxError). */
function readJson(file: URL | string, field: string): unknown {
  try {
    return JSON.parse(readFileSync(file, 'utf8'));
  } catch (cause) {
    throw new ConfigError(field, `cannot read ${String(file)} as JSON: ${(cause as Error).message}`, { cause });
  }
}

export function parsePromptSpec(json: unknown, source = 'prompt-template'): PromptSpec {
  const parsed = specSchema.safeParse(json);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    throw new ConfigError(`${source}:${issue?.path.join('.') ?? ''}`, issue?.message ?? 'invalid', { cause: parsed.error });
  }
  return Object.freeze(parsed.data);
}
