import { z } from 'zod';
import { CANDIDATE_SOURCES, type ScoringCase } from '../../domain/evidence.ts';

/**
 * zod schemas of a serialized `ScoringCase`, as written by `starstream cases export` (one per line, see
 * `src/cli/cases.ts`) and in a model's `parity.jsonl`. Missing feature fields read as 0, so case files written
 * before a feature was added stay readable.
 */

const finite = z.number().refine(Number.isFinite, 'must be finite');

export const featuresSchema = z.object({
  cooccurrence: finite,
  cooccurrenceRecent: finite.default(0),
  cooccurringRecentItems: finite,
  neighbourEngagement: finite,
  embeddingScore: finite,
  popularity: finite,
  recentPopularity: finite.default(0),
  trend: finite,
  categoryFit: finite,
});

export const evidenceSchema = z.object({
  itemId: z.string(),
  title: z.string().nullable(),
  categories: z.array(z.string()),
  sources: z.array(z.enum(CANDIDATE_SOURCES)).default([]),
  features: featuresSchema,
  sentences: z.array(z.string()),
});

export const userContextSchema = z.object({
  userId: z.string(),
  interactionCount: z.number().int().nonnegative(),
  recentItems: z.array(z.object({ itemId: z.string(), title: z.string().nullable(), atMs: z.number() })),
  categoryMix: z.array(z.object({ category: z.string(), share: z.number() })),
});

export const scoringCaseSchema = z.object({
  eventId: z.string(),
  atMs: z.number(),
  user: userContextSchema,
  candidates: z.array(evidenceSchema),
});

/** Narrows the schema's output to the domain type (the shapes agree field by field). */
export function parseScoringCase(json: unknown): ScoringCase {
  return scoringCaseSchema.parse(json) as ScoringCase;
}
