import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { loadConfig } from '../../src/config/load.ts';
import type { ConfigInput } from '../../src/config/schema.ts';
import { generateStream } from '../../src/data/synthetic.ts';
import type { Interaction } from '../../src/domain/events.ts';
import type { ScoringCase } from '../../src/domain/evidence.ts';
import type { LogRecord } from '../../src/eventlog/port.ts';
import { buildEngine, buildProcessor, type Engine } from '../../src/main.ts';
import type { BatchProcessor, RankedEvent } from '../../src/pipeline/processor.ts';
import { BASELINE_VERSION, createBaselineScorer } from '../../src/star/baseline/scorer.ts';
import type { Scorer } from '../../src/star/port.ts';

const TOP_K = 5;
const T0 = Date.UTC(2025, 0, 1);

async function setup(overrides: ConfigInput = {}): Promise<{ engine: Engine; processor: BatchProcessor; cases: ScoringCase[]; ranked: RankedEvent[] }> {
  const config = loadConfig({
    overrides: {
      ...overrides,
      store: { dimension: 8, ...overrides.store },
      ranking: { topK: TOP_K },
      candidates: { fromEmbedding: 10, fromCooccurrence: 10, fromPopular: 10, maxCandidates: 30 },
      evidence: { neighbours: 5 },
    },
  });
  const engine = buildEngine(config);
  await engine.store.init();
  const baseline = createBaselineScorer();
  const cases: ScoringCase[] = [];
  // The baseline, recording what each ranking saw.
  const spy: Scorer = { ...baseline, score: (cs) => (cases.push(...cs), baseline.score(cs)) };
  const processor = buildProcessor(engine, { scorer: () => spy });
  const ranked: RankedEvent[] = [];
  processor.onRanked = (r) => ranked.push(r);
  return { engine, processor, cases, ranked };
}

let offset = 0;
function recordOf(engine: Engine, event: Interaction, key: string | null = event.userId): LogRecord {
  return {
    topic: 'starstream.interactions',
    partition: 0,
    offset: String(offset++),
    key: key === null ? null : Buffer.from(key),
    value: engine.codecs.interaction.encode(event),
    headers: {},
    timestampMs: Date.now(),
  };
}

let seq = 0;
const event = (userId: string, itemId: string, timestampMs: number, extra: Partial<Interaction> = {}): Interaction => ({
  eventId: `p${seq++}`,
  userId,
  itemId,
  type: 'view',
  value: null,
  timestampMs,
  context: {},
  ...extra,
});

/** Other users made `itemId` popular in an earlier (committed) batch. */
async function makePopular(engine: Engine, processor: BatchProcessor, itemIds: readonly string[], t = T0): Promise<void> {
  const events = itemIds.flatMap((itemId, i) => Array.from({ length: 6 - i }, (_, k) => event(`fan${k}`, itemId, t + i * 100 + k)));
  await processor.process(events.map((e) => recordOf(engine, e)));
}

describe('BatchProcessor with the embedded store', () => {
  it('publishes one recommendation per accepted event, with its event id, top K, model version and evidence', async () => {
    const { engine, processor } = await setup();
    const events = [...generateStream({ events: 600, users: 30, items: 80, seed: 5 })];
    for (let b = 0; b < 3; b++) {
      const batch = events.slice(b * 200, (b + 1) * 200);
      const out = await processor.process(batch.map((e) => recordOf(engine, e)));
      assert.equal(out.accepted, batch.length);
      assert.deepEqual(out.deadLetters, []);
      assert.equal(out.recommendations.length, batch.length);
      const byId = new Map(batch.map((e) => [e.eventId, e]));
      assert.equal(new Set(out.recommendations.map((r) => r.eventId)).size, batch.length, 'one per event');
      for (const rec of out.recommendations) {
        const trigger = byId.get(rec.eventId);
        assert.ok(trigger, `${rec.eventId} is an input event`);
        assert.equal(rec.userId, trigger.userId);
        assert.equal(rec.modelVersion, BASELINE_VERSION);
        assert.ok(rec.items.length <= TOP_K);
        if (b > 0) assert.equal(rec.items.length, TOP_K, 'a warm store fills the list');
        assert.ok(!rec.items.some((i) => i.itemId === trigger.itemId), 'the item just consumed is not recommended');
        for (let i = 1; i < rec.items.length; i++) assert.ok(rec.items[i - 1]!.score >= rec.items[i]!.score, 'best first');
        for (const item of rec.items) {
          assert.ok(item.evidence.length > 0, 'published items carry CST sentences');
          assert.ok(Number.isFinite(item.score));
        }
        assert.ok(rec.pipelineLatencyMs >= 0);
      }
    }
    const counts = await engine.store.counts();
    assert.equal(counts.users, new Set(events.map((e) => e.userId)).size);
  });

  it('dead-letters bad records and recommends for the good ones of the same batch', async () => {
    const { engine, processor } = await setup();
    const good = event('u1', 'i1', T0);
    const alsoGood = event('u4', 'i4', T0 + 3);
    const records = [
      recordOf(engine, good),
      { ...recordOf(engine, good), value: Buffer.from([1, 2, 3]) },
      recordOf(engine, event('u2', 'i2', T0 + 1), 'u3'),
      recordOf(engine, event('u2', 'i2', T0 + 2, { value: Number.NaN })),
      recordOf(engine, alsoGood),
    ];
    const out = await processor.process(records);
    assert.equal(out.accepted, 2);
    assert.deepEqual(out.deadLetters.map((l) => [l.source.offset, l.code]), [
      [records[1]!.offset, 'UNDECODABLE'],
      [records[2]!.offset, 'KEY_MISMATCH'],
      [records[3]!.offset, 'NON_FINITE_VALUE'],
    ]);
    assert.deepEqual(out.recommendations.map((r) => r.eventId).sort(), [good.eventId, alsoGood.eventId].sort());
    assert.equal((await engine.store.counts()).users, 2, 'only the good events were learned');
  });

  it('handles a user\'s events in order: each ranking sees its own event and no later one', async () => {
    const { engine, processor, cases } = await setup();
    await makePopular(engine, processor, ['a', 'b', 'c', 'd']);
    cases.length = 0;
    const mine = [event('me', 'a', T0 + 10_000), event('me', 'b', T0 + 11_000), event('me', 'c', T0 + 12_000)];
    const batch = [mine[0]!, event('x', 'd', T0 + 10_500), mine[1]!, event('y', 'a', T0 + 11_500), mine[2]!];
    const out = await processor.process(batch.map((e) => recordOf(engine, e)));
    const myRecs = out.recommendations.filter((r) => r.userId === 'me').map((r) => r.eventId);
    assert.deepEqual(myRecs, mine.map((e) => e.eventId), 'published in event order');
    const myCases = cases.filter((c) => c.user.userId === 'me');
    assert.deepEqual(myCases.map((c) => c.eventId), mine.map((e) => e.eventId));
    assert.deepEqual(myCases.map((c) => c.user.recentItems.map((r) => r.itemId)), [['a'], ['b', 'a'], ['c', 'b', 'a']]);
    assert.deepEqual(myCases.map((c) => c.user.interactionCount), [1, 2, 3]);
  });

  it('leaks no future: the first of two events in a batch neither knows nor excludes the second one\'s item', async () => {
    const { engine, processor, cases, ranked } = await setup();
    await makePopular(engine, processor, ['B', 'C', 'D']);
    cases.length = 0;
    ranked.length = 0;
    const first = event('u', 'A', T0 + 20_000);
    const second = event('u', 'B', T0 + 21_000);
    await processor.process([recordOf(engine, first), recordOf(engine, second)]);
    const [r1, r2] = ranked;
    assert.equal(r1?.event.eventId, first.eventId);
    assert.equal(r2?.event.eventId, second.eventId);
    const [c1, c2] = cases;
    assert.deepEqual(c1!.user.recentItems.map((r) => r.itemId), ['A'], 'the first ranking has not seen B');
    assert.ok(r1!.candidates.some((c) => c.itemId === 'B'), 'B, popular and not yet consumed, is a candidate of the first');
    assert.deepEqual(c2!.user.recentItems.map((r) => r.itemId), ['B', 'A']);
    assert.ok(!r2!.candidates.some((c) => c.itemId === 'B'), 'after consuming B it is excluded');
    assert.ok(!r2!.candidates.some((c) => c.itemId === 'A'));
  });

  it(
    'leaks no future across users either: evidence for an event ignores later events of other users in the batch',
    async () => {
      const { engine, processor, ranked } = await setup();
      // B consumed X before; A consumes X at t1; B consumes Z at t2 > t1 in the same batch, making X–Z co-occur.
      await processor.process([recordOf(engine, event('B', 'X', T0))]);
      ranked.length = 0;
      const a = event('A', 'X', T0 + 1_000);
      const b = event('B', 'Z', T0 + 2_000);
      await processor.process([recordOf(engine, a), recordOf(engine, b)]);
      const forA = ranked.find((r) => r.event.eventId === a.eventId)!;
      const z = forA.candidates.find((c) => c.itemId === 'Z');
      assert.equal(z?.features.cooccurrence ?? 0, 0, 'at t1 nobody had consumed Z after X yet');
    },
  );

  it('publishes nothing with rankingEnabled = false, but still learns', async () => {
    const { engine, processor, cases } = await setup({ pipeline: { rankingEnabled: false } });
    const events = [...generateStream({ events: 100, users: 10, items: 30, seed: 2 })];
    const out = await processor.process(events.map((e) => recordOf(engine, e)));
    assert.equal(out.accepted, 100);
    assert.deepEqual(out.recommendations, []);
    assert.equal(cases.length, 0, 'nothing was ranked');
    assert.equal((await engine.store.counts()).users, new Set(events.map((e) => e.userId)).size);
    processor.rankingEnabled = true;
    const more = await processor.process([recordOf(engine, event('u0', 'i0', events.at(-1)!.timestampMs + 1))]);
    assert.equal(more.recommendations.length, 1, 'the switch works at run time');
  });

  it('rate-limits per user in event time when publish.minIntervalPerUserMs is set', async () => {
    const { engine, processor } = await setup({ publish: { minIntervalPerUserMs: 60_000 } });
    const events = [event('u', 'a', T0), event('u', 'b', T0 + 1_000), event('v', 'a', T0 + 2_000), event('u', 'c', T0 + 61_000)];
    const out = await processor.process(events.map((e) => recordOf(engine, e)));
    assert.equal(out.accepted, 4);
    assert.deepEqual(out.recommendations.map((r) => r.eventId).sort(), [events[0]!.eventId, events[2]!.eventId, events[3]!.eventId].sort());
  });
});
