import type { UserProfile } from '../store/port.ts';
import { generateCandidates, type CandidateOptions, type CandidateSet } from '../stages/candidates/index.ts';
import { collectEvidence, type CaseEvidence, type EvidenceOptions } from '../stages/evidence/index.ts';
import type { CstTemplates } from '../stages/evidence/templates.ts';
import type { StoreView } from '../stages/state/store-view.ts';
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
  view: StoreView,
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
