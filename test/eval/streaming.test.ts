import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { replayEngine } from '../../src/eval/replay.ts';
import { loadConfig } from '../../src/config/load.ts';
import type { ConfigInput } from '../../src/config/schema.ts';
import { generateStream } from '../../src/data/synthetic.ts';
import type { Interaction } from '../../src/domain/events.ts';
import { evaluateStreaming, type StreamingEngine } from '../../src/eval/streaming.ts';
import { cooccurrenceScorer, embeddingScorer, popularityScorer } from '../../src/eval/systems.ts';
import { buildEngine } from '../../src/main.ts';
import { createBaselineScorer } from '../../src/star/baseline/scorer.ts';

async function streamingEngine(overrides: ConfigInput = {}): Promise<StreamingEngine> {
  const config = loadConfig({
    overrides: {
      store: { dimension: 8 },
      candidates: { fromEmbedding: 20, fromCooccurrence: 20, fromPopular: 10, maxCandidates: 40 },
      evidence: { neighbours: 10 },
      ...overrides,
    },
  });
  const engine = buildEngine(config);
  await engine.store.init();
  return replayEngine(config, engine);
}

function stream(pairs: readonly (readonly [string, string])[]): Interaction[] {
  return pairs.map(([userId, itemId], i) => ({
    eventId: `e${i}`,
    userId,
    itemId,
    type: 'view',
    value: null,
    timestampMs: Date.UTC(2025, 0, 1) + i * 1_000,
    context: {},
  }));
}

describe('evaluateStreaming', () => {
  it('scores every system on the same cases, and the baseline beats popularity', async () => {
    // Smaller than a real run (the suite has a time budget); the world is the synthetic default's shape.
    const events = [...generateStream({ events: 5_000, users: 250, items: 500, seed: 3 })];
    const progress: number[] = [];
    const rows = await evaluateStreaming(
      events,
      await streamingEngine(),
      [popularityScorer(), cooccurrenceScorer(), embeddingScorer(), createBaselineScorer()],
      { k: 10, warmupShare: 0.2, onProgress: (done) => progress.push(done), progressEvery: 2_000 },
    );
    assert.deepEqual(rows.map((r) => r.system), ['popularity', 'item-cf', 'embeddings', createBaselineScorer().modelVersion]);
    for (const row of rows) {
      assert.equal(row.cases, events.length - Math.floor(events.length * 0.2), `${row.system} scored every case after warm-up`);
      assert.ok(row.hitRate >= 0 && row.hitRate <= 1);
      assert.ok(row.ndcg >= 0 && row.ndcg <= row.hitRate, `${row.system}: NDCG ≤ hit rate`);
    }
    const [popularity, itemCf, , baseline] = rows;
    assert.ok(baseline!.hitRate > popularity!.hitRate * 1.5, `baseline ${baseline!.hitRate} vs popularity ${popularity!.hitRate}`);
    assert.ok(itemCf!.hitRate > popularity!.hitRate, 'co-occurrence carries signal on this world');
    assert.deepEqual(progress, [2_000, 4_000]);
  });

  it('recommends before it learns each event (prequential)', async () => {
    // u1 consumes a then b, so b co-occurs with a; u2 then consumes a, then b: scored before it is learned,
    // b is u2's top co-occurrence candidate (a hit). Had b been learned first, it would be consumed, hence
    // excluded: a miss. Only that last event is scored.
    const [row] = await evaluateStreaming(
      stream([['u1', 'a'], ['u1', 'b'], ['u2', 'a'], ['u2', 'b']]),
      await streamingEngine(),
      [cooccurrenceScorer()],
      { k: 1, warmupShare: 0.75 },
    );
    assert.equal(row!.cases, 1);
    assert.equal(row!.hitRate, 1);
    assert.equal(row!.ndcg, 1);
  });

  it(
    'offers a cold user the items seen so far as popular, from the first events of a fresh store',
    async () => {
      // Four new users each consume the same item: from the second event on, popularity ranks it first.
      const [row] = await evaluateStreaming(stream([['u1', 'a'], ['u2', 'a'], ['u3', 'a'], ['u4', 'a']]), await streamingEngine(), [popularityScorer()], {
        k: 1,
        warmupShare: 0,
      });
      assert.equal(row!.cases, 4);
      assert.equal(row!.hitRate, 0.75, 'only the very first event has nothing to recommend from');
    },
  );
});
