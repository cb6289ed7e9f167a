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
  it('is scored on the same cases as the others and learns from each protocol\'s own lists without reading ahead', async () => {
    const events = [...generateStream(WORLD)];
    const items = generateCatalogue(WORLD);
    const config = loadConfig({ overrides: SMALL });
    const engine = buildEngine(config);
    await engine.store.init();
    await engine.store.putItemMetadata(items.map((i) => ({ itemId: i.itemId, title: i.title, categories: i.categories })));
    const guard = { window: 200, minOutcomes: 50, margin: 0.01, checkEvery: 25 };
    const online = onlineBlendScorer({ guard });
    const onlinePaper = onlineBlendScorer({ guard, k: 5 });
    const systems: HarnessSystem[] = [
      { name: 'item-cf', scorer: cooccurrenceScorer() },
      { name: 'baseline', scorer: createBaselineScorer() },
      { name: 'online', scorer: online, paperScorer: onlinePaper },
    ];
    const result = await runHarness(events, items, replayEngine(config, engine), systems, DEFAULT_HARNESS_OPTIONS);
    await engine.store.close();
    for (const protocol of [result.streaming, result.paper]) {
      assert.equal(protocol.ranks[2]!.length, protocol.tags.length);
      assert.equal(protocol.ranks[2]!.length, protocol.ranks[0]!.length);
    }
    // Each protocol's blend saw its own lists only: the stream's candidate sets, or the paper's 20.
    // (Paper cases are every 4th event of the last fifth of the time: fewer users come back to a second one.)
    for (const [scorer, cases, joined] of [[online, result.streaming.tags.length, 50], [onlinePaper, result.paper.tags.length, 10]] as const) {
      const stats = scorer.stats();
      assert.equal(stats.cases, cases);
      assert.ok(stats.outcomes > joined, `joined ${stats.outcomes} outcomes`);
      // The harness scores its protocols in batches, out of time order: every list still read weights from before it.
      assert.equal(stats.beyondHistory, 0);
    }
  });
});
