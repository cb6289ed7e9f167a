/**
 * Issue 16, idempotent learning with `store.itemWrites = routed` on a real Qdrant: the processor learns users
 * through profiles (`StoreView`) and sends item deltas to their single writer (`stages/item-deltas`). Every
 * user point carries the source position it has learned up to (`UserProfile.learned`), so a batch written and
 * then not committed (the process dies after the store write, before its offsets commit) is redelivered to a
 * new process, a fresh tiered store over the same collections, whose users hold it: its events are answered
 * again but not learned again; they send the item deltas they made the first time again, from their users'
 * outboxes, and the writer drops those its items hold (positions in the item points). The state equals
 * learning every event once:
 * users (counts, histories, consumed filters, first/last seen, positions) and items through the routed writer
 * (counts, audiences, co-occurrence, popularity). Vectors are left out (the profile path's negatives and new
 * vectors are not seeded per event). A publish that failed after the user write (same process) re-sends the
 * batch's item deltas without learning its users again. The same skip in `direct` mode moves the same metric.
 *
 * The server: as `tiered.test.ts` (`qdrant-server.ts`); every store uses a random collection prefix, dropped
 * afterwards.
 */
import assert from 'node:assert/strict';
import { describe, it, type TestContext } from 'node:test';
import { loadConfig } from '../../src/config/load.ts';
import type { Config } from '../../src/config/schema.ts';
import { silentLogger } from '../../src/logging/logger.ts';
import { buildEngine, buildItemDeltaWriter, buildProcessor, type Engine } from '../../src/main.ts';
import { NO_INSTRUMENTS } from '../../src/pipeline/instruments.ts';
import { EmbeddedStore } from '../../src/store/embedded/index.ts';
import { createQdrantStore } from '../../src/store/qdrant/index.ts';
import { createTieredStore, type TieredStore } from '../../src/store/tiered/index.ts';
import type { ItemDeltaWriter } from '../../src/stages/item-deltas/index.ts';
import { collectionPrefix, dropCollections, durableState, INTERACTIONS_TOPIC, records, stream } from './tiered-world.ts';
import { qdrantForTests, type QdrantServer } from './qdrant-server.ts';

const target = await qdrantForTests();
const skip = 'skip' in target ? target.skip : false;
const server = 'skip' in target ? null : target;

const FAST_RETRY = { retries: 2, initialDelayMs: 20, maxDelayMs: 100, multiplier: 2, jitter: 0.2 };

function pipelineConfig(t: QdrantServer, p: string, itemWrites: 'routed' | 'direct'): Config {
  return loadConfig({
    overrides: {
      store: {
        kind: 'qdrant',
        dimension: 8,
        itemWrites,
        retry: FAST_RETRY,
        qdrant: { url: t.url, collectionPrefix: p, ...(t.apiKey ? { apiKey: t.apiKey } : {}) },
      },
      ranking: { topK: 5 },
      candidates: { fromEmbedding: 10, fromCooccurrence: 10, fromPopular: 10, maxCandidates: 30 },
      evidence: { neighbours: 5 },
    },
  });
}


describe('routed item writes on a real Qdrant: a batch redelivered after its user write is learned once', { skip, timeout: 180_000 }, () => {
  const events = stream(400, 25, 35, 'routed');
  const userIds = [...new Set(events.map((e) => e.userId))];
  const itemIds = [...new Set(events.map((e) => e.itemId))];

  /** A new process: a tiered store over `p`'s collections, its processor (counting skipped events) and item writer. */
  async function processOver(t: TestContext, p: string, itemWrites: 'routed' | 'direct' = 'routed') {
    const config = pipelineConfig(server!, p, itemWrites);
    const hot = new EmbeddedStore({ ...config.store, ...config.store.embedded, path: undefined });
    const store: TieredStore = createTieredStore({
      durable: createQdrantStore({ config: config.store }),
      hot,
      limits: config.store,
      cacheTtlMs: config.store.qdrant.cacheTtlMs,
      pageSize: config.store.qdrant.maxBatchPoints,
    });
    t.after(() => store.close());
    const engine = buildEngine(config, store);
    await store.init();
    const counted = { skipped: 0 };
    const processor = buildProcessor(engine, { instruments: { ...NO_INSTRUMENTS, learningSkipped: () => counted.skipped++ } });
    const writer = buildItemDeltaWriter(config, store, silentLogger());
    return { store, engine, processor, writer, counted };
  }

  /**
   * Learns `from`..`to` as one batch; its item deltas reach their writer (a consumer of the item-deltas topic)
   * and its outputs are "published", then it settles. Returns the batch's output.
   */
  async function learn(run: { processor: ReturnType<typeof buildProcessor>; engine: Engine; writer: ItemDeltaWriter | null }, from: number, to: number) {
    const out = await run.processor.process(records(run.engine, events.slice(from, to), from), { settleLater: true });
    if (run.writer && out.itemDeltas.length > 0) await run.writer.write(out.itemDeltas);
    await out.settle(true);
    return out;
  }

  /** What Qdrant holds for every user and item, as a new process reads it (vectors left out). */
  async function stateIn(t: TestContext, p: string) {
    return durableState((await processOver(t, p)).store, userIds, itemIds);
  }

  /** The state of learning every event once (two batches, nothing redelivered), on collections of its own. */
  async function clean(t: TestContext) {
    const p = collectionPrefix('routed');
    t.after(() => dropCollections(server!, p));
    const once = await processOver(t, p);
    await learn(once, 0, 200);
    await learn(once, 200, 400);
    assert.equal(once.counted.skipped, 0);
    return stateIn(t, p);
  }

  async function withPrefix(t: TestContext, fn: (p: string) => Promise<void>): Promise<void> {
    const p = collectionPrefix('routed');
    t.after(() => dropCollections(server!, p));
    await fn(p);
  }

  it('a crash after the user write and before the offset commit: users and items equal learning once', (t) =>
    withPrefix(t, async (p) => {
      const want = await clean(t);
      for (const e of events) assert.ok(want.users.get(e.userId)?.learned?.get(`${INTERACTIONS_TOPIC}:0`) !== undefined, 'users carry their position');

      const first = await processOver(t, p);
      await learn(first, 0, 200);
      await first.store.close();
      // The restarted process (its item writer restarted too, so it cannot drop repeats it saw) gets the
      // uncommitted batch again, with more records behind it.
      const second = await processOver(t, p);
      const redelivered = await learn(second, 0, 300);
      assert.equal(second.counted.skipped, 200, 'every event of the written batch skipped');
      // Answered again (at-least-once: the first answers may never have been sent), learned once.
      assert.ok(redelivered.recommendations.some((r) => r.eventId === events[0]!.eventId));
      // This process cannot know they were published: the held events send their deltas again from their users'
      // outboxes, and the writer drops every one of them (their items hold them): the state below is exact.
      const resent = redelivered.itemDeltas.flatMap((m) => m.changes).filter((c) => Number(c.sourceOffset) < 200);
      assert.ok(resent.length > 0);
      await learn(second, 300, 400);
      assert.deepEqual(await stateIn(t, p), want);
    }));

  it('a failed publish after the user write: the redelivery sends the batch\'s item deltas, not its users\' learning', (t) =>
    withPrefix(t, async (p) => {
      const want = await clean(t);

      const run = await processOver(t, p);
      // The users are written, then the outputs (the item deltas among them) fail to publish: none reach the writer.
      const failed = await run.processor.process(records(run.engine, events.slice(0, 200)), { settleLater: true });
      assert.ok(failed.itemDeltas.length > 0);
      await failed.settle(false);
      const redelivered = await learn(run, 0, 300);
      assert.equal(run.counted.skipped, 200);
      assert.deepEqual(
        redelivered.itemDeltas.flatMap((m) => m.changes).filter((c) => Number(c.sourceOffset) < 200).length,
        failed.itemDeltas.flatMap((m) => m.changes).length,
        'the held events send the deltas they made the first time',
      );
      await learn(run, 300, 400);
      assert.deepEqual(await stateIn(t, p), want);
    }));

  it('a crash after the user write and before the send (a new process): the redelivery sends the deltas kept in the users\' outboxes', (t) =>
    withPrefix(t, async (p) => {
      const want = await clean(t);

      const first = await processOver(t, p);
      // The users are written (with their outboxes); the process dies before the outputs are sent.
      const lost = await first.processor.process(records(first.engine, events.slice(0, 200)), { settleLater: true });
      assert.ok(lost.itemDeltas.length > 0);
      await first.store.close();
      const outboxes = await (await processOver(t, p)).store.readOutboxes(userIds);
      assert.ok(outboxes.size > 0 && [...outboxes.keys()].every((id) => events.slice(0, 200).some((e) => e.userId === id)), 'the written users keep outboxes');

      const second = await processOver(t, p);
      const resent = { count: 0 };
      const counted = buildProcessor(second.engine, { instruments: { ...NO_INSTRUMENTS, itemDeltasResent: () => resent.count++ } });
      const redelivered = await counted.process(records(second.engine, events.slice(0, 300)), { settleLater: true });
      await second.writer!.write(redelivered.itemDeltas);
      await redelivered.settle(true);
      assert.equal(resent.count, 200, 'every held event sent its deltas from its user\'s outbox');
      const sent = (out: typeof lost) => out.itemDeltas.flatMap((m) => m.changes.map((c) => `${m.itemId}@${c.sourceOffset}`)).filter((k) => Number(k.split('@')[1]) < 200).sort();
      assert.deepEqual(sent(redelivered), sent(lost), 'the same changes as the first time');
      await learn(second, 300, 400);
      assert.deepEqual(await stateIn(t, p), want);
    }));

  it('the item writer crashes after its write and before its commit: the redelivered deltas are applied once (positions in the item points)', (t) =>
    withPrefix(t, async (p) => {
      const want = await clean(t);

      const first = await processOver(t, p);
      const batch = await first.processor.process(records(first.engine, events.slice(0, 200)), { settleLater: true });
      await first.writer!.write(batch.itemDeltas);
      await batch.settle(true);
      await first.store.close();
      // A new writer process reads the same item-deltas records again (its offsets were never committed).
      const second = await processOver(t, p);
      const again = await second.writer!.write(batch.itemDeltas);
      assert.equal(again.applied, 0, 'every change is held by its item already');
      assert.equal(again.duplicates, again.changes);
      await learn(second, 200, 400);
      assert.deepEqual(await stateIn(t, p), want);
    }));

  it('direct mode: the same redelivery moves the same metric', (t) =>
    withPrefix(t, async (p) => {
      const first = await processOver(t, p, 'direct');
      await learn(first, 0, 200);
      await first.store.close();
      const second = await processOver(t, p, 'direct');
      await learn(second, 0, 300);
      assert.equal(second.counted.skipped, 200);
    }));
});
