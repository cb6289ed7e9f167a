import { caseText, dataBlock, rankerSystem } from './prompts.ts';
import type { Analyst } from './roles.ts';
import { rankerSchema, type RankerAnswer } from './schemas.ts';
import { ask, type RunContext } from './session.ts';

export interface FinalRanking {
  readonly ranking: string[];
  readonly justification: string;
}

/**
 * The ranker orders every candidate. The schema pins the ids (an enum of the case's candidates) and the
 * length; a permutation is checked here.
 *
 * Repair policy: an answer that repeats ids (and so misses others) is refused and asked again like any
 * malformed answer. Only the last allowed attempt is repaired instead of failing the case: repeated ids
 * keep their first position, missing ids are appended in the serving scorer's order, and the `recommend`
 * step records what was changed (`repaired`), so the export can filter such runs out. An id that is not a
 * candidate never gets this far (schema), whatever a title or tool output asked for.
 */
export async function runRanker(rc: RunContext, findings: ReadonlyMap<Analyst, string>): Promise<FinalRanking> {
  const ids = rc.teacherCase.candidates.map((c) => c.itemId);
  const blocks = [...findings].map(([analyst, text]) => `Finding of the ${analyst} analyst:\n${dataBlock(`finding:${analyst}`, text)}`);
  const messages = [
    { role: 'system' as const, content: rankerSystem() },
    {
      role: 'user' as const,
      content: [
        `The case:\n${dataBlock('case', caseText(rc.teacherCase, { historyItems: 10, evidence: true }))}`,
        ...blocks,
        `Rank all ${ids.length} candidates.`,
      ].join('\n'),
    },
  ];
  const check = (value: RankerAnswer, last: boolean): string | null => {
    const duplicates = duplicatesOf(value.ranking);
    if (duplicates.length === 0 || last) return null;
    return `the ranking repeats ${duplicates.slice(0, 5).join(', ')}; list every candidate exactly once`;
  };
  const { value } = await ask<RankerAnswer>(rc, 'ranker', messages, rankerSchema(ids), 'mars_ranking', check);
  const { ranking, duplicates, appended } = repairRanking(value.ranking, ids);
  rc.recorder.step({
    kind: 'recommend',
    agent: 'ranker',
    ranking,
    justification: value.justification,
    ...(duplicates.length || appended.length ? { repaired: { duplicates, appended } } : {}),
  });
  return { ranking, justification: value.justification };
}

function duplicatesOf(ids: readonly string[]): string[] {
  const seen = new Set<string>();
  const dup = new Set<string>();
  for (const id of ids) (seen.has(id) ? dup : seen).add(id);
  return [...dup];
}

/** First occurrence wins; ids not in `candidates` are dropped; missing candidates follow in their order. */
export function repairRanking(
  answer: readonly string[],
  candidates: readonly string[],
): { ranking: string[]; duplicates: string[]; appended: string[] } {
  const allowed = new Set(candidates);
  const seen = new Set<string>();
  const duplicates: string[] = [];
  const ranking: string[] = [];
  for (const id of answer) {
    if (!allowed.has(id)) continue;
    if (seen.has(id)) duplicates.push(id);
    else {
      seen.add(id);
      ranking.push(id);
    }
  }
  const appended = candidates.filter((id) => !seen.has(id));
  return { ranking: [...ranking, ...appended], duplicates, appended };
}
