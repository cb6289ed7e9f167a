import type { CollaborativeEvidence, UserContext } from '../../domain/evidence.ts';
import type { FeatureName, FeatureTransform, PromptSpec } from './spec.ts';

/**
 * The numeric side input of a STAR model: the CST features of each candidate, transformed as the prompt spec
 * says, one float32 row per candidate. The text carries the same numbers as words; the side input lets a
 * compact model use them exactly without having to learn to read digits.
 */

export function featureWidth(spec: PromptSpec): number {
  return spec.features.columns.length;
}

/** Writes the feature row of `candidate` into `out` at `offset` (float32, so the trainer's values match). */
export function writeFeatures(
  spec: PromptSpec,
  user: UserContext,
  candidate: CollaborativeEvidence,
  out: Float32Array,
  offset: number,
): void {
  const columns = spec.features.columns;
  for (let j = 0; j < columns.length; j++) {
    const column = columns[j]!;
    out[offset + j] = transform(column.transform, rawFeature(column.name, user, candidate));
  }
}

function rawFeature(name: FeatureName, user: UserContext, c: CollaborativeEvidence): number {
  if (name === 'user.interactionCount') return user.interactionCount;
  // A case written before a feature existed reads it as 0, like an absent signal.
  const value = (c.features as unknown as Record<string, number | undefined>)[name];
  return typeof value === 'number' && Number.isFinite(value) ? value : 0;
}

function transform(kind: FeatureTransform, x: number): number {
  switch (kind) {
    case 'log1p':
      return Math.log1p(Math.max(0, x));
    case 'log':
      return Math.log(Math.max(1e-3, x));
    case 'identity':
      return x;
  }
}
