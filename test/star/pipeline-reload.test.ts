import assert from 'node:assert/strict';
import { test } from 'node:test';
import { loadConfig } from '../../src/config/load.ts';
import { generateCatalogue, generateStream } from '../../src/data/synthetic.ts';
import { createCodecs } from '../../src/eventlog/codec/avro.ts';
import type { LogRecord } from '../../src/eventlog/port.ts';
import { buildEngine, buildProcessor } from '../../src/main.ts';
import { StarRegistry } from '../../src/star/registry/registry.ts';
import { point, registryOptions, tempRegistry } from './helpers.ts';

// The embedded pipeline ranks with STAR through `registry.current()` while the registry swaps models between
// and during batches: every accepted event still yields its recommendation, from one whole model.
test('hot reload mid-stream: no failed or dropped recommendation', async () => {
  const { dir, cleanup } = tempRegistry(['v1', 'v2']);
  // A retired model is closed after this grace, whoever still holds it: a batch ranked on a loaded machine can
  // hold the old model for seconds, so the grace is far beyond that (the swaps themselves are what is tested).
  const registry = await StarRegistry.open(registryOptions(dir, { retireGraceMs: 10_000 }));
  const config = loadConfig({ overrides: { store: { dimension: 16 }, candidates: { maxCandidates: 40 } } });
  const engine = buildEngine(config);
  await engine.store.init();
  const world = { users: 40, items: 120, events: 400, seed: 3 };
  await engine.store.putItemMetadata(generateCatalogue(world).map((i) => ({ itemId: i.itemId, title: i.title, categories: i.categories })));
  const processor = buildProcessor(engine, { scorer: () => registry.current() });
  const codecs = createCodecs();
  const now = Date.now();
  const events = [...generateStream({ ...world, startMs: now - 10 * 86_400_000, durationMs: 86_400_000 })];
  const rankable = somethingToRank(events);
  const records: LogRecord[] = events.map((e, i) => ({
    topic: 'interactions',
    partition: 0,
    offset: String(i),
    key: Buffer.from(e.userId),
    value: codecs.interaction.encode(e),
    headers: {},
    timestampMs: now,
  }));
  try {
    let recommendations = 0;
    let accepted = 0;
    const versions = new Set<string>();
    for (let start = 0, batch = 0; start < records.length; start += 50, batch++) {
      const processing = processor.process(records.slice(start, start + 50));
      // Swap while the batch is being ranked.
      point(dir, batch % 2 === 0 ? 'v2' : 'v1');
      const [out, swap] = await Promise.all([processing, registry.refresh()]);
      assert.equal(swap.status, 'swapped');
      assert.deepEqual(out.deadLetters.map((d) => d.reason), []);
      accepted += out.accepted;
      recommendations += out.recommendations.length;
      for (const r of out.recommendations) {
        versions.add(r.modelVersion);
        // Catalogue-only items carry no signal to rank by: a list may be empty only while every item the stream
        // has shown so far is one this user consumed (the stream's first user, at its very start).
        if (rankable.get(r.eventId)) assert.ok(r.items.length > 0, `${r.eventId}: something to rank, and nothing ranked`);
        assert.ok(r.items.every((item) => Number.isFinite(item.score) && item.evidence.length > 0));
      }
    }
    assert.equal(accepted, records.length);
    assert.equal(recommendations, accepted, 'one recommendation per accepted event');
    assert.deepEqual([...versions].sort(), ['star-v1', 'star-v2']);
  } finally {
    await registry.close();
    await engine.store.close();
    cleanup();
  }
});

/** Per event: whether some item interacted with up to then (by anyone) is not one its user has consumed. */
function somethingToRank(events: readonly { eventId: string; userId: string; itemId: string }[]): Map<string, boolean> {
  const seen = new Set<string>();
  const consumed = new Map<string, Set<string>>();
  const out = new Map<string, boolean>();
  for (const e of events) {
    seen.add(e.itemId);
    const mine = consumed.get(e.userId) ?? new Set<string>();
    mine.add(e.itemId);
    consumed.set(e.userId, mine);
    out.set(e.eventId, [...seen].some((id) => !mine.has(id)));
  }
  return out;
}
