import { fmt, sanitiseTitle } from './format.ts';
import { render, type CstTemplates } from './templates.ts';

/**
 * One function per CST sentence. Each takes the facts the sentence states, already read from the state as of
 * the case's time, and says nothing it was not given: every number in a sentence is one of these facts, so a
 * caller that passes true facts gets a true sentence. `test/cst/` checks that claim against generated worlds
 * and a replay of ml-100k by reading the numbers back out of the sentences.
 */

/** The user's recent items and a candidate's co-occurrence with them (`CooccurrenceSignal`). */
export interface CooccurrenceFacts {
  /** Summed co-occurrence counts between the candidate and the recent items. */
  readonly count: number;
  /** How many of the recent items co-occur with it at all. */
  readonly items: number;
  /** How many distinct recent items were compared: the M of "N of M". */
  readonly recentItems: number;
  /** Title (unsanitised) and id of the recent item with the largest count. */
  readonly strongestTitle: string | null;
  readonly strongestId: string;
}

export function cooccurrenceSentence(t: CstTemplates, f: CooccurrenceFacts): string {
  return render(t.templates.cooccurrence, {
    count: fmt.int(f.count),
    items: fmt.int(f.items),
    window: fmt.int(f.recentItems),
    title: sanitiseTitle(f.strongestTitle, f.strongestId),
  });
}

/** The user-CF sentence: `count` of the `total` nearest users read have the item among their latest items. */
export function neighboursSentence(t: CstTemplates, count: number, total: number): string {
  return render(t.templates.neighbours, { count: fmt.int(count), total: fmt.int(total) });
}

/** `count` of the user's `total` most recent items are in `category`, one of the candidate's categories. */
export function categorySentence(t: CstTemplates, count: number, total: number, category: string): string {
  return render(t.templates.category, { count: fmt.int(count), total: fmt.int(total), category: sanitiseTitle(category, '?') });
}

/** The candidate's taste match and its rank (1 = best, ties share a rank) among the case's `candidates`. */
export function embeddingSentence(t: CstTemplates, score: number, rank: number, candidates: number): string {
  return render(t.templates.embedding, { score: fmt.fixed2(score), rank: fmt.int(rank), candidates: fmt.int(candidates) });
}

/** What the popularity sentences need to know of an item at the case's time. */
export interface PopularityFacts {
  /** Long-window decayed interaction count at `atMs`. */
  readonly long: number;
  /** Short-window over long-window rate; 1 is steady. */
  readonly trend: number;
  /** Interactions ever (`ItemProfile.interactionCount`). */
  readonly interactions: number;
  /** Time of its latest interaction (the head of `ItemProfile.recentUsers`); null when none is known. */
  readonly latestMs: number | null;
  /** The case's time: the event's, or the stream's for the on-demand API. */
  readonly atMs: number;
}

/** The word the popularity sentence uses for a trend. */
export function trendWord(trend: number): 'rising' | 'cooling' | 'steady' {
  return trend >= 1.5 ? 'rising' : trend <= 0.67 ? 'cooling' : 'steady';
}

/**
 * Popularity: the decayed count and its trend while it rounds to at least one (one interaction within about a
 * half-life); below that, "quiet" with the true interaction count and the age of the latest one (cst-1 said
 * "New to the catalogue: 0 interactions so far" of items with hundreds of old interactions), or "new" for an
 * item known only from the catalogue.
 */
export function popularitySentence(t: CstTemplates, p: PopularityFacts): string {
  if (Math.round(p.long) >= 1) return render(t.templates.popularity, { count: fmt.int(p.long), trend: trendWord(p.trend) });
  if (p.interactions === 0) return t.templates.cold;
  if (p.latestMs !== null) {
    return render(t.templates.quiet, { count: fmt.int(p.interactions), age: fmt.age(p.atMs - p.latestMs) });
  }
  return render(t.templates.popularity, { count: fmt.int(p.long), trend: trendWord(p.trend) });
}

/** For a user the stream has no interaction of: says so instead of a taste match against an empty history. */
export function newUserSentence(t: CstTemplates): string {
  return t.templates.newUser;
}
