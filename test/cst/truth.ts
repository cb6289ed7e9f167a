import { AGE_UNITS, parseSentence, sanitiseTitle, type CstTemplates } from '../../src/cst/index.ts';
import type { CollaborativeEvidence } from '../../src/domain/evidence.ts';
import type { Engine } from '../../src/main.ts';
import { dot } from '../../src/stages/embeddings/vectors.ts';
import type { StoreView } from '../../src/stages/state/store-view.ts';
import { decayedCount } from '../../src/store/popularity.ts';
import type { ItemProfile, UserProfile } from '../../src/store/port.ts';

/**
 * An independent reader of CST sentences: it parses each sentence back into its template's placeholders and
 * checks every number against the state the sentence describes, recomputed here from the store's profiles
 * (never from the evidence stage's features, which would check the code against itself). Each
 * contradiction is returned as a line naming the candidate, the sentence and what the state says.
 */

export interface CaseState {
  readonly view: StoreView;
  readonly engine: Engine;
  readonly user: UserProfile;
  /** The time the evidence claims to be as of. */
  readonly atMs: number;
  /** Every candidate of the case, for "rank r of n". */
  readonly candidates: readonly CollaborativeEvidence[];
}

const DECIMAL = /^-?\d+(\.\d+)?$/;

export async function contradictions(state: CaseState, templates: CstTemplates): Promise<string[]> {
  const { view, engine, user, atMs } = state;
  const cfg = engine.config;
  const seedIds = [...new Set(user.recentItems.slice(0, engine.caseOptions.candidates.recentItemsForCooccurrence).map((r) => r.id))];
  const seedProfiles = await view.itemsById(seedIds);
  const seeds = seedIds.map((id) => seedProfiles.get(id)).filter((p): p is ItemProfile => p !== undefined);
  const ids = state.candidates.map((c) => c.itemId);
  const items = await view.itemsById(ids);
  const taste = new Map(ids.map((id) => [id, items.get(id) ? dot(user.vector, items.get(id)!.vector) : 0]));
  const neighbours = await neighboursOf(view, user, engine.caseOptions.evidence.neighbours);
  const out: string[] = [];

  for (const candidate of state.candidates) {
    const id = candidate.itemId;
    const item = items.get(id);
    for (const sentence of candidate.sentences) {
      const fail = (why: string): void => void out.push(`${id}: "${sentence}": ${why}`);
      const parsed = parseSentence(sentence, templates);
      if (!parsed) {
        fail('fits no template');
        continue;
      }
      const v = parsed.values;
      const int = (name: string): number => {
        const text = v[name] ?? '';
        if (!/^\d+$/.test(text)) fail(`${name} "${text}" is not a whole number`);
        return Number(text);
      };
      switch (parsed.key) {
        case 'cooccurrence': {
          const counts = seeds.map((s) => s.cooccurrence.get(id) ?? 0);
          const total = counts.reduce((a, b) => a + b, 0);
          const items = counts.filter((c) => c > 0).length;
          const window = int('window');
          if (window !== seeds.length) fail(`names ${window} recent items; the counts are over the ${seeds.length} most recent distinct items`);
          if (int('items') > window) fail(`says ${v.items} of ${window}`);
          if (int('items') !== items) fail(`${items} of the recent items co-occur with it, not ${v.items}`);
          if (int('count') !== Math.round(total)) fail(`the co-occurrence counts sum to ${total}`);
          const max = Math.max(...counts);
          const strongest = seeds.filter((_, i) => counts[i] === max).map((s) => sanitiseTitle(s.title, s.itemId));
          if (!strongest.includes(v.title ?? '')) fail(`the strongest recent items are ${JSON.stringify(strongest)}`);
          break;
        }
        case 'neighbours': {
          const count = int('count');
          const total = int('total');
          const engaged = neighbours.filter((n) => n.recentItems.some((r) => r.id === id)).length;
          if (count > total) fail(`says ${count} of ${total}`);
          if (total !== neighbours.length) fail(`${neighbours.length} nearest users were read, not ${total}`);
          if (count !== engaged) fail(`${engaged} of them have it among their latest items`);
          break;
        }
        case 'category': {
          const count = int('count');
          const total = int('total');
          const mine = (item?.categories ?? []).map((c) => sanitiseTitle(c, '?'));
          const index = mine.indexOf(v.category ?? '');
          if (index < 0) fail(`the item's categories are ${JSON.stringify(mine)}`);
          const category = item?.categories[index];
          const having = seeds.filter((s) => category !== undefined && s.categories.includes(category)).length;
          if (count > total) fail(`says ${count} of ${total}`);
          if (total !== seeds.length) fail(`the user's most recent distinct items are ${seeds.length}, not ${total}`);
          if (count !== having) fail(`${having} of them are ${v.category}`);
          break;
        }
        case 'embedding': {
          if (user.interactionCount === 0) fail('a user with no interactions has no taste to match');
          const score = taste.get(id) ?? 0;
          if (!DECIMAL.test(v.score ?? '') || Math.abs(Number(v.score) - score) > 0.005 + 1e-9) fail(`the taste match is ${score}`);
          const rank = int('rank');
          const n = int('candidates');
          const above = [...taste.values()].filter((s) => s > score).length;
          if (n !== ids.length) fail(`the case has ${ids.length} candidates`);
          if (rank < 1 || rank > n) fail(`rank ${rank} is outside 1..${n}`);
          if (rank !== above + 1) fail(`${above} candidates match better, so rank ${above + 1}`);
          break;
        }
        case 'popularity':
        case 'quiet':
        case 'cold': {
          const interactions = item?.interactionCount ?? 0;
          const latest = item?.recentUsers[0]?.atMs ?? null;
          if (latest !== null && latest > atMs) fail(`its latest interaction (${latest}) is after the evidence's time ${atMs}`);
          const long = item ? decayedCount(item.popularity.longLog, atMs, cfg.store.popularityLongHalfLifeMs) : 0;
          const short = item ? decayedCount(item.popularity.shortLog, atMs, cfg.store.popularityShortHalfLifeMs) : 0;
          if (parsed.key === 'cold') {
            if (interactions !== 0) fail(`it has ${interactions} interactions`);
          } else if (parsed.key === 'quiet') {
            if (Math.round(long) >= 1) fail(`its decayed count is ${long}, not quiet`);
            if (int('count') !== interactions) fail(`it has ${interactions} interactions`);
            if (latest === null) fail('no interaction time is known');
            else {
              const age = ageFails(v.age ?? '', atMs - latest);
              if (age) fail(age);
            }
          } else {
            const count = int('count');
            if (count !== Math.round(long)) fail(`its decayed count at ${atMs} is ${long}`);
            if (count > interactions) fail(`${count} recent interactions of ${interactions} in all`);
            const trend = long > 0 ? short / cfg.store.popularityShortHalfLifeMs / (long / cfg.store.popularityLongHalfLifeMs) : 1;
            const word = trend >= 1.5 ? 'rising' : trend <= 0.67 ? 'cooling' : 'steady';
            if (v.trend !== word) fail(`the short window runs at ${trend.toFixed(3)} times the long one: ${word}`);
          }
          break;
        }
        case 'newUser':
          if (user.interactionCount !== 0) fail(`the user has ${user.interactionCount} interactions`);
          break;
      }
    }
  }
  return out;
}

/** "3 weeks" against a gap in ms: the number must be the gap in that unit within half a unit (at least 1). */
function ageFails(text: string, gapMs: number): string | null {
  const m = /^(\d+) (minute|hour|day|week|month|year)s?$/.exec(text);
  if (!m) return `"${text}" is not an age`;
  if (gapMs < 0) return `the gap is negative (${gapMs} ms)`;
  const unit = AGE_UNITS.find((u) => u.unit === m[2])!;
  const value = Number(m[1]);
  const exact = gapMs / unit.ms;
  const close = Math.abs(value - exact) <= 0.5 + 1e-9 || (value === 1 && exact < 1);
  return close ? null : `the gap is ${exact.toFixed(2)} ${unit.unit}s, not ${value}`;
}

async function neighboursOf(view: StoreView, user: UserProfile, k: number): Promise<UserProfile[]> {
  if (k === 0 || user.interactionCount === 0) return [];
  const nearest = await view.searchUsers(user.vector, k, new Set([user.userId]));
  const profiles = await view.usersById(nearest.map((n) => n.id));
  return [...profiles.values()];
}
