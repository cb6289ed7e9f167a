import type { CandidateSource, CollaborativeEvidence, EvidenceFeatures, UserContext } from '../../domain/evidence.ts';
import { decayedCount } from '../../store/popularity.ts';
import type { ItemProfile, UserProfile } from '../../store/port.ts';
import type { CandidateSet, CooccurrenceSignal } from '../candidates/index.ts';
import type { StoreView } from '../state/store-view.ts';
import { dot } from '../embeddings/vectors.ts';
import { fmt, render, sanitiseTitle, type CstTemplates } from './templates.ts';

/**
 * Evidence (Collaborative Signal Translation): for each candidate, the collaborative signals as numbers and
 * as short deterministic sentences. Everything is read from the state as of the current event, so evidence
 * never includes the future. The teacher's tools call the same functions, so the student sees exactly the
 * evidence the teacher could fetch.
 */

export interface EvidenceOptions {
  readonly neighbours: number;
  readonly maxSentences: number;
  readonly cooccurrenceWindow: number;
  readonly popularityShortHalfLifeMs: number;
  readonly popularityLongHalfLifeMs: number;
}

export interface EvidenceInput {
  readonly user: UserProfile;
  readonly candidates: CandidateSet;
  readonly nowMs: number;
}

export interface CaseEvidence {
  readonly user: UserContext;
  readonly candidates: CollaborativeEvidence[];
  /** Nearest users actually read for the neighbour counts. */
  readonly neighboursConsulted: number;
}

export async function collectEvidence(
  view: StoreView,
  input: EvidenceInput,
  options: EvidenceOptions,
  templates: CstTemplates | null,
): Promise<CaseEvidence> {
  const { user, candidates, nowMs } = input;
  const [profiles, engagement] = await Promise.all([
    view.itemsById(candidates.itemIds),
    neighbourEngagement(view, user, options.neighbours, new Set(candidates.itemIds)),
  ]);
  const categoryMix = categoryMixOf(candidates.recentItems);
  const evidence = candidates.itemIds.map((itemId) => {
    const profile = profiles.get(itemId);
    const features = featuresOf(user, profile, candidates.cooccurrence.get(itemId), engagement.counts.get(itemId) ?? 0, categoryMix, nowMs, options);
    return {
      itemId,
      title: profile?.title ?? null,
      categories: profile?.categories ?? [],
      sources: candidates.sources.get(itemId) ?? ([] as CandidateSource[]),
      features,
      sentences: [] as string[],
    };
  });
  if (templates) {
    const ctx = sentenceContext(candidates, engagement.total, options, evidence);
    for (const e of evidence) e.sentences = sentencesFor(e, templates, ctx, options.maxSentences);
  }
  return {
    user: userContext(user, candidates.recentItems, categoryMix),
    candidates: evidence,
    neighboursConsulted: engagement.total,
  };
}

/**
 * Sentences for some of a case's candidates (`evidence` built without them): the baseline ranker renders
 * only what it publishes. `all` is the case's evidence, for "rank r of n" style numbers.
 */
export function renderSentences(
  some: readonly CollaborativeEvidence[],
  all: CaseEvidence,
  templates: CstTemplates,
  candidates: CandidateSet,
  options: EvidenceOptions,
): CollaborativeEvidence[] {
  const ctx = sentenceContext(candidates, all.neighboursConsulted, options, all.candidates);
  return some.map((e) => ({ ...e, sentences: sentencesFor(e, templates, ctx, options.maxSentences) }));
}

async function neighbourEngagement(
  view: StoreView,
  user: UserProfile,
  k: number,
  candidates: ReadonlySet<string>,
): Promise<{ counts: Map<string, number>; total: number }> {
  if (k === 0 || user.interactionCount === 0) return { counts: new Map(), total: 0 };
  const nearest = await view.searchUsers(user.vector, k, new Set([user.userId]));
  const neighbours = await view.usersById(nearest.map((n) => n.id));
  return { counts: countEngagement(neighbours.values(), candidates), total: neighbours.size };
}

/**
 * How many of `neighbours` have each of `candidates` in their recent history: the user-CF signal. Shared
 * with the teacher's user-CF tool, which passes neighbours whose histories are cut at the case's time.
 */
export function countEngagement(
  neighbours: Iterable<Pick<UserProfile, 'recentItems'>>,
  candidates: ReadonlySet<string>,
): Map<string, number> {
  const counts = new Map<string, number>();
  for (const neighbour of neighbours) {
    for (const r of neighbour.recentItems) if (candidates.has(r.id)) counts.set(r.id, (counts.get(r.id) ?? 0) + 1);
  }
  return counts;
}

function featuresOf(
  user: UserProfile,
  item: ItemProfile | undefined,
  cooc: CooccurrenceSignal | undefined,
  engagement: number,
  categoryMix: ReadonlyMap<string, number>,
  nowMs: number,
  o: EvidenceOptions,
): EvidenceFeatures {
  const { long, short, trend } = popularityOf(item, nowMs, o);
  let fit = 0;
  for (const c of item?.categories ?? []) fit = Math.max(fit, categoryMix.get(c) ?? 0);
  return {
    cooccurrence: cooc?.total ?? 0,
    cooccurrenceRecent: cooc?.recencyWeighted ?? 0,
    cooccurringRecentItems: cooc?.items ?? 0,
    neighbourEngagement: engagement,
    embeddingScore: item ? dot(user.vector, item.vector) : 0,
    popularity: long,
    recentPopularity: short,
    trend,
    categoryFit: fit,
  };
}

export interface PopularitySignal {
  /** Long-window decayed interaction count. */
  readonly long: number;
  /** Short-window decayed interaction count. */
  readonly short: number;
  /** Short-window over long-window rate; 1 is steady. */
  readonly trend: number;
}

/** An item's popularity and trend at `nowMs` (zeros for an unknown item); also read by the teacher's tools. */
export function popularityOf(
  item: Pick<ItemProfile, 'popularity'> | undefined,
  nowMs: number,
  o: Pick<EvidenceOptions, 'popularityShortHalfLifeMs' | 'popularityLongHalfLifeMs'>,
): PopularitySignal {
  const long = item ? decayedCount(item.popularity.longLog, nowMs, o.popularityLongHalfLifeMs) : 0;
  const short = item ? decayedCount(item.popularity.shortLog, nowMs, o.popularityShortHalfLifeMs) : 0;
  // Rates per half-life, so that a steady stream gives a trend of 1 whatever the two windows are.
  const trend = long > 0 ? short / o.popularityShortHalfLifeMs / (long / o.popularityLongHalfLifeMs) : 1;
  return { long, short, trend };
}

/** The word the popularity sentence uses for a trend. */
export function trendWord(trend: number): 'rising' | 'cooling' | 'steady' {
  return trend >= 1.5 ? 'rising' : trend <= 0.67 ? 'cooling' : 'steady';
}

/** The CST popularity sentence (or the cold-start one below one decayed interaction). */
export function popularitySentence(t: CstTemplates, popularity: number, trend: number): string {
  return popularity >= 1
    ? render(t.templates.popularity, { count: fmt.int(popularity), trend: trendWord(trend) })
    : render(t.templates.cold, { count: fmt.int(popularity) });
}

/** The CST user-CF sentence: `count` of the `total` nearest users engaged with the item. */
export function neighboursSentence(t: CstTemplates, count: number, total: number): string {
  return render(t.templates.neighbours, { count: fmt.int(count), total: fmt.int(total) });
}

/** Share of the recent items in each category, largest first. */
function categoryMixOf(recentItems: readonly ItemProfile[]): Map<string, number> {
  const counts = new Map<string, number>();
  for (const item of recentItems) for (const c of item.categories) counts.set(c, (counts.get(c) ?? 0) + 1);
  const n = Math.max(1, recentItems.length);
  return new Map([...counts.entries()].sort((a, b) => b[1] - a[1] || (a[0] < b[0] ? -1 : 1)).map(([c, k]) => [c, k / n]));
}

function userContext(user: UserProfile, recentItems: readonly ItemProfile[], mix: ReadonlyMap<string, number>): UserContext {
  const titles = new Map(recentItems.map((i) => [i.itemId, i.title]));
  return {
    userId: user.userId,
    interactionCount: user.interactionCount,
    recentItems: user.recentItems.map((r) => ({ itemId: r.id, title: titles.get(r.id) ?? null, atMs: r.atMs })),
    categoryMix: [...mix.entries()].map(([category, share]) => ({ category, share })),
  };
}

interface SentenceContext {
  readonly window: number;
  readonly neighboursConsulted: number;
  readonly recentTitles: ReadonlyMap<string, string | null>;
  readonly cooccurrence: ReadonlyMap<string, CooccurrenceSignal>;
  /** Embedding scores of all candidates, descending, for "rank r of n". */
  readonly embeddingScores: readonly number[];
}

function sentenceContext(
  candidates: CandidateSet,
  neighboursConsulted: number,
  o: EvidenceOptions,
  all: readonly Pick<CollaborativeEvidence, 'features'>[],
): SentenceContext {
  return {
    window: Math.min(o.cooccurrenceWindow, Math.max(1, candidates.recentItems.length)),
    neighboursConsulted,
    recentTitles: new Map(candidates.recentItems.map((i) => [i.itemId, i.title])),
    cooccurrence: candidates.cooccurrence,
    embeddingScores: all.map((e) => e.features.embeddingScore).sort((a, b) => b - a),
  };
}

function sentencesFor(
  e: Pick<CollaborativeEvidence, 'itemId' | 'categories' | 'features'>,
  t: CstTemplates,
  ctx: SentenceContext,
  maxSentences: number,
): string[] {
  const f = e.features;
  const out: string[] = [];
  if (f.cooccurrence > 0) {
    const withId = ctx.cooccurrence.get(e.itemId)?.strongestWith ?? '?';
    const strongest = sanitiseTitle(ctx.recentTitles.get(withId) ?? null, withId);
    out.push(render(t.templates.cooccurrence, { count: fmt.int(f.cooccurrence), items: fmt.int(f.cooccurringRecentItems), window: fmt.int(ctx.window), title: strongest }));
  }
  if (f.neighbourEngagement > 0) {
    out.push(neighboursSentence(t, f.neighbourEngagement, ctx.neighboursConsulted));
  }
  if (f.categoryFit > 0) {
    out.push(render(t.templates.category, { share: fmt.percent(f.categoryFit), categories: e.categories.slice(0, 3).map((c) => sanitiseTitle(c, '?')).join(', ') }));
  }
  const rank = 1 + countAbove(ctx.embeddingScores, f.embeddingScore);
  out.push(render(t.templates.embedding, { score: fmt.fixed2(f.embeddingScore), rank: fmt.int(rank), candidates: fmt.int(ctx.embeddingScores.length) }));
  out.push(popularitySentence(t, f.popularity, f.trend));
  return out.slice(0, maxSentences);
}

/** How many of the descending `scores` are strictly greater than `x` (binary search). */
function countAbove(scores: readonly number[], x: number): number {
  let lo = 0;
  let hi = scores.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (scores[mid]! > x) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}
