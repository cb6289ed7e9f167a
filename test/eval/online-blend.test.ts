import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { loadConfig } from '../../src/config/load.ts';
import { generateCatalogue, generateStream } from '../../src/data/synthetic.ts';
import { DEFAULT_HARNESS_OPTIONS, runHarness, type HarnessSystem } from '../../src/eval/harness.ts';
import { replayEngine } from '../../src/eval/replay.ts';
import { cooccurrenceScorer, onlineBlendScorer } from '../../src/eval/systems.ts';
import { buildEngine } from '../../src/main.ts';
import { createBaselineScorer } from '../../src/star/baseline/scorer.ts';

const WORLD = { users: 80, items: 200, events: 1_500, seed: 6 };
const SMALL = { store: { dimension: 8 }, candidates: { fromEmbedding: 20, fromCooccurrence: 20, fromPopular: 10, maxCandidates: 40 }, evidence: { neighbours: 10 } };

describe('online blend in the evaluation harness', () => {
  it('is scored on the same cases as the others and learns from the replay without reading ahead', async () => {
    const events = [...generateStream(WORLD)];
    const items = generateCatalogue(WORLD);
    const config = loadConfig({ overrides: SMALL });
    const engine = buildEngine(config);
    await engine.store.init();
    await engine.store.putItemMetadata(items.map((i) => ({ itemId: i.itemId, title: i.title, categories: i.categories })));
    const online = onlineBlendScorer({ guard: { window: 200, minOutcomes: 50, margin: 0.01, checkEvery: 25 } });
    const systems: HarnessSystem[] = [
      { name: 'item-cf', scorer: cooccurrenceScorer() },
      { name: 'baseline', scorer: createBaselineScorer() },
      { name: 'online', scorer: online },
    ];
    const result = await runHarness(events, items, replayEngine(config, engine), systems, DEFAULT_HARNESS_OPTIONS);
    await engine.store.close();
    for (const protocol of [result.streaming, result.paper]) {
      assert.equal(protocol.ranks[2]!.length, protocol.tags.length);
      assert.equal(protocol.ranks[2]!.length, protocol.ranks[0]!.length);
    }
    const stats = online.stats();
    assert.ok(stats.outcomes > 100, `joined ${stats.outcomes} outcomes`);
    // The harness scores its protocols in batches, out of time order: every list still read weights from before it.
    assert.equal(stats.beyondHistory, 0);
    assert.equal(stats.cases, result.streaming.tags.length + result.paper.tags.length);
  });
});
