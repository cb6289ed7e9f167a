/**
 * The ranking stages over the embedded store's live batch take fast paths (co-occurrence and neighbour
 * histories as int keys, the batch's popularity selected by slot, sentence facts read only for what is
 * rendered). They must rank exactly as the reference path does: the same reader with only the port's required
 * methods (profiles, searches, popularity), on a seeded world, mid-batch (raised items, changed users).
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { loadConfig } from '../../../src/config/load.ts';
import { createRng } from '../../../src/data/random.ts';
import type { Interaction } from '../../../src/domain/events.ts';
import { buildEngine, type Engine } from '../../../src/main.ts';
import { prepareCase } from '../../../src/pipeline/recommend.ts';
import { aggregateCooccurrence, rowsFromProfiles } from '../../../src/stages/candidates/cooccurrence.ts';
import { learnEventInto } from '../../../src/stages/embeddings/index.ts';
import { countEngagement, countEngagementByKey, renderSentences } from '../../../src/stages/evidence/index.ts';
import { rankCase } from '../../../src/stages/ranking/index.ts';
import { createBaselineScorer } from '../../../src/star/baseline/scorer.ts';
import { decayedCount } from '../../../src/store/popularity.ts';
import type { EmbeddedStore } from '../../../src/store/embedded/index.ts';
import type { BatchReader, CooccurrenceRows, HistoryRows, ItemProfile, LiveBatch } from '../../../src/store/port.ts';

const T0 = Date.UTC(2025, 0, 1);

function engine(): Engine & { store: EmbeddedStore } {
  const config = loadConfig({
    overrides: {
      store: { dimension: 8, cooccurrenceLimit: 12, userHistoryLength: 8, embedded: { indexBuild: 'inline', exactSearchBelow: 40, rebuildDirtyMin: 15 } },
      candidates: { fromEmbedding: 12, fromCooccurrence: 12, fromPopular: 8, maxCandidates: 25, recentItemsForCooccurrence: 5 },
      evidence: { neighbours: 6 },
    },
  });
  return buildEngine(config) as Engine & { store: EmbeddedStore };
}

function events(n: number, users: number, items: number, start: number): Interaction[] {
  const rng = createRng('fast-path');
  return Array.from({ length: n }, (_, k) => ({
    eventId: `e${start}-${k}`,
    userId: `u${rng.int(users)}`,
    // Skewed towards low ids, so co-occurrence lists fill up and popularity ties are rare but possible.
    itemId: `i${Math.floor(items * rng.next() * rng.next())}`,
    type: 'view' as const,
    value: null,
    timestampMs: start + k * 60_000,
    context: {},
  }));
}

/** The batch as a reader with only the port's required methods: the profile-based reference path. */
function referenceOf(batch: LiveBatch): BatchReader {
  return {
    itemsById: (ids) => batch.itemsById(ids),
    usersById: (ids) => batch.usersById(ids),
    searchItems: (q, k, ex) => batch.searchItems(q, k, ex),
    searchUsers: (q, k, ex) => batch.searchUsers(q, k, ex),
    popularItems: (k, now) => batch.popularItems(k, now),
  };
}

async function rankWith(e: Engine, reader: BatchReader, userId: string, nowMs: number) {
  const user = (await reader.usersById([userId])).get(userId)!;
  const prepared = await prepareCase(reader, user, e.caseOptions, nowMs, null);
  const top = await rankCase(createBaselineScorer(), { eventId: 'x', atMs: nowMs, user: prepared.evidence.user, candidates: prepared.evidence.candidates }, 10);
  const explained = renderSentences(top.map((t) => t.evidence), prepared.evidence, e.templates, prepared.candidates, e.caseOptions.evidence);
  // Every candidate with its sentences too: the teacher's cases and STAR render them all.
  const all = renderSentences(prepared.evidence.candidates, prepared.evidence, e.templates, prepared.candidates, e.caseOptions.evidence);
  return { top: explained.map((x, i) => ({ ...x, score: top[i]!.score })), all, user: prepared.evidence.user, consulted: prepared.evidence.neighboursConsulted };
}

describe('ranking fast paths over the embedded batch', () => {
  it('publish the same lists, scores, features and sentences as the profile path, mid-batch', async () => {
    const e = engine();
    const negatives = new Int32Array(e.config.embeddings.negatives);
    const learn = async (batch: readonly Interaction[]): Promise<LiveBatch> => {
      const live = await e.store.openBatch!();
      for (const event of batch) learnEventInto(e.learner, e.negativeSlots, live.state, event, negatives);
      return live;
    };
    const committed = await learn(events(1_500, 60, 150, T0));
    await committed.commit();
    // Left open: its raised items are laid over the store's popularity ranking.
    const later = events(200, 60, 150, T0 + 2_000 * 60_000);
    const live = await learn(later);
    const nowMs = later.at(-1)!.timestampMs;
    const reference = referenceOf(live);
    let ranked = 0;
    let engaged = 0;
    for (const userId of new Set(later.map((x) => x.userId))) {
      const fast = await rankWith(e, live, userId, nowMs);
      const slow = await rankWith(e, reference, userId, nowMs);
      assert.deepEqual(fast, slow, `user ${userId}`);
      ranked++;
      engaged += fast.all.filter((c) => c.features.neighbourEngagement > 1).length;
    }
    assert.ok(ranked > 30);
    // The neighbour counts are compared, not zeros on both sides: many candidates are in several neighbours' histories.
    assert.ok(engaged > 50, `${engaged} candidates engaged by more than one neighbour`);
    live.rollback();
  });

  it("lays the batch's raised items over the store's ranking exactly (brute force over every item)", async () => {
    const e = engine();
    const negatives = new Int32Array(e.config.embeddings.negatives);
    const first = await e.store.openBatch!();
    for (const event of events(800, 40, 120, T0)) learnEventInto(e.learner, e.negativeSlots, first.state, event, negatives);
    await first.commit();
    const live = await e.store.openBatch!();
    const later = events(300, 40, 120, T0 + 1_000 * 60_000);
    const s = e.store.state;
    const halfLife = e.config.store.popularityLongHalfLifeMs;
    for (const [n, event] of later.entries()) {
      learnEventInto(e.learner, e.negativeSlots, live.state, event, negatives);
      if (n % 25 !== 0) continue;
      for (const k of [1, 5, 30]) {
        const brute: { id: string; score: number }[] = [];
        for (const i of s.items.liveSlots()) {
          if (s.itemExists[i] === 1 && s.itemCount[i]! > 0) brute.push({ id: s.items.idOf(i), score: decayedCount(s.longLog[i]!, event.timestampMs, halfLife) });
        }
        brute.sort((a, b) => b.score - a.score || (a.id < b.id ? -1 : 1));
        assert.deepEqual(await live.popularItems(k, event.timestampMs), brute.slice(0, k), `after ${n + 1} events, k ${k}`);
      }
    }
    live.rollback();
  });
});

describe('the key-based folds against their reference definitions', () => {
  /** Histories as `HistoryRows` over a fixed catalogue, and as the profiles `countEngagement` reads. */
  function histories(catalogue: readonly string[], rows: readonly (readonly string[])[]) {
    const keys = new Map(catalogue.map((id, k) => [id, k]));
    const historyRows: HistoryRows = {
      rows: rows.length,
      length: (r) => rows[r]!.length,
      key: (r, e) => keys.get(rows[r]![e]!)!,
      keySpace: catalogue.length,
      keyOf: (id) => keys.get(id) ?? -1,
    };
    const profiles = rows.map((row) => ({ recentItems: row.map((id) => ({ id, atMs: 0 })) }));
    return { historyRows, profiles };
  }

  it('countEngagementByKey counts as countEngagement does: once per neighbour, unknown ids 0', () => {
    const { historyRows, profiles } = histories(['a', 'b', 'c', 'd'], [['a', 'b', 'a', 'a'], ['b', 'c'], [], ['a', 'd', 'b']]);
    const candidates = ['a', 'b', 'c', 'x', 'd'];
    assert.deepEqual([...countEngagementByKey(historyRows, candidates)], [2, 3, 1, 0, 1]);
    const reference = countEngagement(profiles, new Set(candidates));
    assert.deepEqual([...countEngagementByKey(historyRows, candidates)], candidates.map((id) => reference.get(id) ?? 0));
  });

  it('countEngagementByKey agrees with countEngagement on random histories', () => {
    const rng = createRng('engagement');
    const catalogue = Array.from({ length: 40 }, (_, k) => `i${k}`);
    for (let run = 0; run < 50; run++) {
      const rows = Array.from({ length: rng.int(8) }, () => Array.from({ length: rng.int(12) }, () => catalogue[rng.int(15)]!));
      const { historyRows, profiles } = histories(catalogue, rows);
      const candidates = [...new Set(Array.from({ length: rng.int(20) }, () => (rng.next() < 0.1 ? 'unknown' : catalogue[rng.int(catalogue.length)]!)))];
      const reference = countEngagement(profiles, new Set(candidates));
      assert.deepEqual([...countEngagementByKey(historyRows, candidates)], candidates.map((id) => reference.get(id) ?? 0), `run ${run}`);
    }
  });

  it('aggregateCooccurrence reads a source with entry accessors only as it reads row arrays', () => {
    const rng = createRng('cooccurrence');
    const items: ItemProfile[] = Array.from({ length: 6 }, (_, r) => {
      const cooccurrence = new Map<string, number>();
      for (let e = 0; e < 10; e++) cooccurrence.set(`i${rng.int(20)}`, rng.int(4));
      return { itemId: `r${r}`, cooccurrence } as unknown as ItemProfile;
    });
    const arrays = rowsFromProfiles(items);
    const { keysOf: _k, countsOf: _c, ...accessors } = arrays;
    const signals = (rows: CooccurrenceRows) => {
      const s = aggregateCooccurrence(rows);
      return { strongest: s.strongest(8, () => false), each: Array.from({ length: 20 }, (_, k) => s.get(`i${k}`)) };
    };
    const expected = signals(arrays);
    assert.ok(expected.each.some((x) => x !== undefined && x.items > 1));
    assert.deepEqual(signals(accessors), expected);
  });
});
