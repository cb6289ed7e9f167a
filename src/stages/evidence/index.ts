import { KeyScratch } from '../../util/key-scratch.ts';
import type { CandidateSource, CollaborativeEvidence, EvidenceFeatures, UserContext } from '../../domain/evidence.ts';
import { decayedCount } from '../../store/popularity.ts';
import type { BatchReader, HistoryRows, ItemProfile, UserProfile } from '../../store/port.ts';
import type { CandidateSet, CooccurrenceSignal, CooccurrenceSignals } from '../candidates/index.ts';
import { dot } from '../embeddings/vectors.ts';
import {
  categorySentence,
  cooccurrenceSentence,
  embeddingSentence,
  neighboursSentence,
  newUserSentence,
  popularitySentence,
  type CstTemplates,
  type PopularityFacts,
} from '../../cst/index.ts';

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
  /** The time the evidence is as of: the event's, or the stream's for the on-demand API. */
  readonly atMs: number;
  /** What the popularity sentences state of each candidate beyond its features, for `renderSentences`. */
  readonly items: ItemFactsLookup;
}

/** `ItemFacts` by item id: undefined for an id the store does not hold (no interactions, none known). */
export interface ItemFactsLookup {
  get(itemId: string): ItemFacts | undefined;
}

/** Facts of a candidate's profile that its features do not carry. */
export interface ItemFacts {
  readonly interactions: number;
  /** Its latest interaction (head of `recentUsers`); null when none is known. */
  readonly latestMs: number | null;
}

export async function collectEvidence(
  view: BatchReader,
  input: EvidenceInput,
  options: EvidenceOptions,
  templates: CstTemplates | null,
): Promise<CaseEvidence> {
  const { user, candidates, nowMs } = input;
  const ids = candidates.itemIds;
  const [profiles, engagement] = await Promise.all([view.itemsById(ids), neighbourEngagement(view, user, options.neighbours, ids)]);
  const categoryMix = categoryMixOf(candidates.recentItems);
  const evidence = ids.map((itemId, c) => {
    const profile = profiles.get(itemId);
    const features = featuresOf(user, profile, candidates.cooccurrence.get(itemId), engagement.count(c), categoryMix, nowMs, options);
    return {
      itemId,
      title: profile?.title ?? null,
      categories: profile?.categories ?? [],
      sources: candidates.sources.get(itemId) ?? ([] as CandidateSource[]),
      features,
      sentences: [] as string[],
    };
  });
  const out: CaseEvidence = {
    user: userContext(user, candidates.recentItems, categoryMix),
    candidates: evidence,
    neighboursConsulted: engagement.total,
    atMs: nowMs,
    items: factsOf(profiles),
  };
  if (templates) {
    const ctx = sentenceContext(candidates, out);
    for (const e of evidence) e.sentences = sentencesFor(e, templates, ctx, options.maxSentences);
  }
  return out;
}

/**
 * `ItemFacts` read from the candidates' profiles when a sentence asks (the baseline ranker renders ten of a
 * hundred): an item's latest interaction is the head of its audience, which a store may build on first read.
 */
function factsOf(profiles: ReadonlyMap<string, ItemProfile>): ItemFactsLookup {
  return {
    get: (itemId) => {
      const profile = profiles.get(itemId);
      return profile && { interactions: profile.interactionCount, latestMs: profile.recentUsers[0]?.atMs ?? null };
    },
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
  options: Pick<EvidenceOptions, 'maxSentences'>,
): CollaborativeEvidence[] {
  const ctx = sentenceContext(candidates, all);
  return some.map((e) => ({ ...e, sentences: sentencesFor(e, templates, ctx, options.maxSentences) }));
}

/** User-CF counts of one case: `count(c)` for `candidates[c]`; `total` neighbours were read. */
interface Engagement {
  count(candidate: number): number;
  readonly total: number;
}

const NO_ENGAGEMENT: Engagement = { count: () => 0, total: 0 };

async function neighbourEngagement(view: BatchReader, user: UserProfile, k: number, candidates: readonly string[]): Promise<Engagement> {
  if (k === 0 || user.interactionCount === 0) return NO_ENGAGEMENT;
  const nearest = await view.searchUsers(user.vector, k, new Set([user.userId]));
  const nearestIds = nearest.map((n) => n.id);
  if (view.historyRows) {
    const rows = view.historyRows(nearestIds);
    const counts = countEngagementByKey(rows, candidates);
    return { count: (c) => counts[c]!, total: rows.rows };
  }
  const neighbours = await view.usersById(nearestIds);
  const counts = countEngagement(neighbours.values(), new Set(candidates));
  return { count: (c) => counts.get(candidates[c]!) ?? 0, total: neighbours.size };
}

/**
 * Reusable per-key scratch of `countEngagementByKey`: the candidate index of each key stamped with the current
 * generation. One count at a time (it is synchronous).
 */
const engagementScratch = new KeyScratch();

/**
 * `countEngagement` over histories as item keys (`BatchReader.historyRows`), aligned with `candidates` (distinct
 * ids, as a `CandidateSet`'s are): the same counts (a neighbour counts once per item), with no string compared
 * and no set per neighbour.
 */
export function countEngagementByKey(rows: HistoryRows, candidates: readonly string[]): Int32Array {
  const generation = engagementScratch.begin(rows.keySpace);
  const { values: candidate, stamps: stamp } = engagementScratch;
  const n = candidates.length;
  for (let c = 0; c < n; c++) {
    const key = rows.keyOf(candidates[c]!);
    if (key < 0 || key >= rows.keySpace) continue;
    stamp[key] = generation;
    candidate[key] = c;
  }
  const counts = new Int32Array(n);
  // The last row that counted each candidate: a neighbour's repeats of an item count once.
  const lastRow = new Int32Array(n).fill(-1);
  for (let r = 0; r < rows.rows; r++) {
    const length = rows.length(r);
    for (let e = 0; e < length; e++) {
      const key = rows.key(r, e);
      if (stamp[key] !== generation) continue;
      const c = candidate[key]!;
      if (lastRow[c] === r) continue;
      lastRow[c] = r;
      counts[c]!++;
    }
  }
  return counts;
}

/**
 * How many of `neighbours` have each of `candidates` in their recent history: the user-CF signal. A neighbour
 * counts once per item however often the item recurs in its history, so a count never exceeds the neighbours
 * read. Shared with the teacher's user-CF tool, which passes neighbours whose histories are cut at the case's
 * time.
 */
export function countEngagement(
  neighbours: Iterable<Pick<UserProfile, 'recentItems'>>,
  candidates: ReadonlySet<string>,
): Map<string, number> {
  const counts = new Map<string, number>();
  for (const neighbour of neighbours) {
    const had = new Set<string>();
    for (const r of neighbour.recentItems) if (candidates.has(r.id)) had.add(r.id);
    for (const id of had) counts.set(id, (counts.get(id) ?? 0) + 1);
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
  const { long, short, trend } = popularityRates(item, nowMs, o);
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

/** An item's popularity at a time, with what its sentence states besides (`PopularityFacts`). */
export interface PopularitySignal extends PopularityFacts {
  /** Short-window decayed interaction count. */
  readonly short: number;
}

/**
 * An item's popularity and trend at `nowMs` (zeros for an unknown item); also read by the teacher's tools.
 * `nowMs` must not be earlier than the events the profile holds, or their weights exceed 1: the event's time
 * in the stream, the stream's time (never the wall clock) for the on-demand API.
 */
export function popularityOf(
  item: Pick<ItemProfile, 'popularity' | 'interactionCount' | 'recentUsers'> | undefined,
  nowMs: number,
  o: Pick<EvidenceOptions, 'popularityShortHalfLifeMs' | 'popularityLongHalfLifeMs'>,
): PopularitySignal {
  const { long, short, trend } = popularityRates(item, nowMs, o);
  return { long, short, trend, interactions: item?.interactionCount ?? 0, latestMs: item?.recentUsers[0]?.atMs ?? null, atMs: nowMs };
}

/**
 * The numbers of `popularityOf` alone: what every candidate's features need. The facts beyond them (the latest
 * interaction, the head of the item's audience) are read only for the candidates whose sentences are rendered.
 */
function popularityRates(
  item: Pick<ItemProfile, 'popularity'> | undefined,
  nowMs: number,
  o: Pick<EvidenceOptions, 'popularityShortHalfLifeMs' | 'popularityLongHalfLifeMs'>,
): { long: number; short: number; trend: number } {
  const long = item ? decayedCount(item.popularity.longLog, nowMs, o.popularityLongHalfLifeMs) : 0;
  const short = item ? decayedCount(item.popularity.shortLog, nowMs, o.popularityShortHalfLifeMs) : 0;
  // Rates per half-life, so that a steady stream gives a trend of 1 whatever the two windows are.
  const trend = long > 0 ? short / o.popularityShortHalfLifeMs / (long / o.popularityLongHalfLifeMs) : 1;
  return { long, short, trend };
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
  readonly evidence: CaseEvidence;
  /** Distinct recent items co-occurrence and category counts were taken over: the M of "N of M". */
  readonly recentItems: number;
  readonly recentTitles: ReadonlyMap<string, string | null>;
  /** How many of the recent items are in each category. */
  readonly categoryCounts: ReadonlyMap<string, number>;
  readonly cooccurrence: CooccurrenceSignals;
  /** Embedding scores of all candidates, descending, for "rank r of n". */
  readonly embeddingScores: readonly number[];
  readonly newUser: boolean;
}

function sentenceContext(candidates: CandidateSet, evidence: CaseEvidence): SentenceContext {
  const categoryCounts = new Map<string, number>();
  for (const item of candidates.recentItems) {
    for (const c of new Set(item.categories)) categoryCounts.set(c, (categoryCounts.get(c) ?? 0) + 1);
  }
  return {
    evidence,
    recentItems: new Set(candidates.recentItems.map((i) => i.itemId)).size,
    recentTitles: new Map(candidates.recentItems.map((i) => [i.itemId, i.title])),
    categoryCounts,
    cooccurrence: candidates.cooccurrence,
    embeddingScores: evidence.candidates.map((e) => e.features.embeddingScore).sort((a, b) => b - a),
    newUser: evidence.user.interactionCount === 0,
  };
}

/** Strongest signal first: co-occurrence, similar users, category, taste match, popularity. */
function sentencesFor(
  e: Pick<CollaborativeEvidence, 'itemId' | 'categories' | 'features'>,
  t: CstTemplates,
  ctx: SentenceContext,
  maxSentences: number,
): string[] {
  const f = e.features;
  const out: string[] = [];
  if (ctx.newUser) out.push(newUserSentence(t));
  const cooc = ctx.cooccurrence.get(e.itemId);
  if (f.cooccurrence > 0 && cooc) {
    out.push(
      cooccurrenceSentence(t, {
        count: cooc.total,
        items: cooc.items,
        recentItems: ctx.recentItems,
        strongestTitle: ctx.recentTitles.get(cooc.strongestWith) ?? null,
        strongestId: cooc.strongestWith,
      }),
    );
  }
  if (f.neighbourEngagement > 0) out.push(neighboursSentence(t, f.neighbourEngagement, ctx.evidence.neighboursConsulted));
  const category = strongestCategory(e.categories, ctx.categoryCounts);
  if (category) out.push(categorySentence(t, category.count, ctx.recentItems, category.category));
  // A user with no interactions has no taste vector: a "taste match 0.00, rank 1" would explain nothing.
  if (!ctx.newUser) {
    const rank = 1 + countAbove(ctx.embeddingScores, f.embeddingScore);
    out.push(embeddingSentence(t, f.embeddingScore, rank, ctx.embeddingScores.length));
  }
  const facts = ctx.evidence.items.get(e.itemId) ?? { interactions: 0, latestMs: null };
  out.push(popularitySentence(t, { long: f.popularity, trend: f.trend, interactions: facts.interactions, latestMs: facts.latestMs, atMs: ctx.evidence.atMs }));
  return out.slice(0, maxSentences);
}

/** The candidate's category most of the recent items share (first listed on ties); null when none. */
function strongestCategory(categories: readonly string[], counts: ReadonlyMap<string, number>): { category: string; count: number } | null {
  let best: { category: string; count: number } | null = null;
  for (const category of categories) {
    const count = counts.get(category) ?? 0;
    if (count > 0 && (!best || count > best.count)) best = { category, count };
  }
  return best;
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
