import type { CandidateSource } from '../../domain/evidence.ts';
import type { BatchReader, UserProfile } from '../../store/port.ts';
import type { CandidateSet } from '../candidates/index.ts';
import { collectEvidence, type CaseEvidence, type EvidenceOptions } from './index.ts';
import type { CstTemplates } from '../../cst/index.ts';

/**
 * Evidence for given item ids rather than for the candidate stage's picks: the evaluation protocol and the
 * case export rank a fixed list (the true next item and sampled negatives). It runs `collectEvidence` on the
 * candidate set with its item list replaced, so every number comes from the same functions and the same
 * state: co-occurrence from the user's recent items (the set's signals cover every co-occurring item, not
 * only the ones it picked), neighbour counts, embedding scores, popularity. An item the candidate stage did
 * not pick has no `sources`; "rank r of n" sentences rank among `itemIds`.
 */
export function evidenceForItems(
  view: BatchReader,
  user: UserProfile,
  candidates: CandidateSet,
  itemIds: readonly string[],
  nowMs: number,
  options: EvidenceOptions,
  templates: CstTemplates | null,
): Promise<CaseEvidence> {
  const sources = new Map<string, readonly CandidateSource[]>();
  for (const id of itemIds) sources.set(id, candidates.sources.get(id) ?? []);
  const fixed: CandidateSet = { ...candidates, itemIds, sources };
  return collectEvidence(view, { user, candidates: fixed, nowMs }, options, templates);
}
