import type { BatchReader, UserProfile } from '../store/port.ts';
import { generateCandidates, type CandidateOptions, type CandidateSet } from '../stages/candidates/index.ts';
import { collectEvidence, renderSentences, type CaseEvidence, type EvidenceOptions } from '../stages/evidence/index.ts';
import type { CstTemplates } from '../cst/index.ts';
import { rankCase, type RankedCandidate } from '../stages/ranking/index.ts';
import type { Scorer } from '../star/port.ts';
import { createBloom } from '../util/bloom.ts';

/**
 * Candidates + evidence for one user at one moment: the part of ranking shared by the stream, the on-demand
 * API and the evaluation harness, so all three rank through the same stages.
 */

export interface CaseOptions {
  readonly candidates: CandidateOptions;
  readonly evidence: EvidenceOptions;
}

export interface PreparedCase {
  readonly candidates: CandidateSet;
  readonly evidence: CaseEvidence;
}

export async function prepareCase(
  view: BatchReader,
  user: UserProfile,
  options: CaseOptions,
  nowMs: number,
  templates: CstTemplates | null,
): Promise<PreparedCase> {
  const candidates = await generateCandidates(view, user, options.candidates, nowMs);
  const evidence = await collectEvidence(view, { user, candidates, nowMs }, options.evidence, templates);
  return { candidates, evidence };
}

/** The profile of a user the stream has not seen yet: no history, so candidates come from popularity. */
export function coldUser(userId: string, dimension: number, consumedFilterBytes: number): UserProfile {
  return {
    userId,
    vector: new Float32Array(dimension),
    recentItems: [],
    interactionCount: 0,
    consumed: createBloom(consumedFilterBytes),
    firstSeenMs: 0,
    lastSeenMs: 0,
  };
}

/** What `rankNow` returns: the top K with their evidence, and whether the user was unknown (cold start). */
export interface RankedNow {
  readonly ranked: readonly RankedCandidate[];
  readonly modelVersion: string;
  readonly coldStart: boolean;
  /** Candidates the scorer saw. */
  readonly candidates: number;
}

/**
 * Ranks for one user at `nowMs` through the stream's stages (candidates → evidence → ranking), without
 * learning anything: the on-demand API. A user the store does not know gets the cold-start answer (popular
 * items, explained), not an error. `scorer` is taken once, so a model swap never splits one answer.
 */
export async function rankNow(
  view: BatchReader,
  request: { readonly userId: string; readonly k: number; readonly nowMs: number },
  deps: {
    readonly scorer: Scorer;
    readonly templates: CstTemplates;
    readonly options: CaseOptions;
    readonly dimension: number;
    readonly consumedFilterBytes: number;
  },
): Promise<RankedNow> {
  const known = (await view.usersById([request.userId])).get(request.userId);
  const user = known ?? coldUser(request.userId, deps.dimension, deps.consumedFilterBytes);
  const scorer = deps.scorer;
  // As in the stream: sentences for every candidate only when the scorer reads them, else for the top K.
  const templates = scorer.readsSentences ? deps.templates : null;
  const { candidates, evidence } = await prepareCase(view, user, deps.options, request.nowMs, templates);
  const top = await rankCase(
    scorer,
    { eventId: `on-demand:${request.userId}`, atMs: request.nowMs, user: evidence.user, candidates: evidence.candidates },
    request.k,
  );
  let ranked = top;
  if (!templates) {
    const explained = renderSentences(top.map((t) => t.evidence), evidence, deps.templates, candidates, deps.options.evidence);
    ranked = top.map((t, i) => ({ score: t.score, evidence: explained[i]! }));
  }
  return { ranked, modelVersion: scorer.modelVersion, coldStart: known === undefined, candidates: evidence.candidates.length };
}
