import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { QdrantClient } from '@qdrant/js-client-rest';
import { loadConfig } from '../../src/config/load.ts';
import type { Interaction } from '../../src/domain/events.ts';
import { generateStream } from '../../src/data/synthetic.ts';
import { OnlineHitRate } from '../../src/eval/online.ts';
import { buildEngine, type Engine } from '../../src/main.ts';
import { prepareCase } from '../../src/pipeline/recommend.ts';
import { StoreView } from '../../src/stages/state/store-view.ts';
import { createEmbeddedStore } from '../../src/store/embedded/index.ts';
import { EMPTY_LOG_SUM, logAddEvent } from '../../src/store/popularity.ts';
import type { VectorStore } from '../../src/store/port.ts';
import { createQdrantStore } from '../../src/store/qdrant/index.ts';
import { uniqueName } from '../helpers.ts';

/**
 * The popularity ranking is a function of the stream, not of the store or of the batch boundaries: one generated
 * stream, learned and ranked the way the processor does it (one `StoreView` per batch, committed at the batch's
 * end), through the embedded store in batches of 7 and through a real Qdrant (`QDRANT_URL`) in batches of 60,
 * must show every event the same popular items, equal to the ranking of every event up to and including it, and
 * give the popularity baseline the same hits.
 *
 * Why: the popular candidates were read from the store as of the last commit (a lag of the batch so far, larger
 * on the slower store, whose batches fill up), and the embedded store served a ranking cached for 1000 deltas:
 * on a 10k-event demo the popular list matched the ranking as of the event for 35% of events on the embedded
 * store and 12% on Qdrant. (The demo's baseline gap, 0.060 against 0.035, had another cause: the embedded store
 * indexed catalogue-only items' zero vectors, so most of its embedding candidates were never-seen items.)
 *
 * Embedding candidates are off: a vector search reads the store as of the batch's start by design, so they
 * depend on the batch boundaries; everything else here must not.
 */

const qdrantUrl = process.env['QDRANT_URL'];
const qdrantApiKey = process.env['QDRANT_API_KEY'];
const ci = process.env['CI'];
const skip = qdrantUrl ? false : 'QDRANT_URL is unset: no Qdrant server to compare the embedded store with';
// As everywhere in the Qdrant suites: under CI a missing server fails the file instead of passing it quietly.
if (skip && ci !== undefined && ci !== '' && ci !== 'false' && ci !== '0') {
  throw new Error(`${skip}; CI is set, so this file fails rather than skips`);
}

const EVENTS = 300;
const TOP = 20;

interface Run {
  /** Per event: the ids `StoreView.popularItems(TOP)` returned, after the event was learned. */
  readonly popular: string[][];
  readonly baselineHits: number;
  readonly cases: number;
}

function configFor(store: Record<string, unknown>) {
  return loadConfig({
    overrides: {
      store: { dimension: 8, ...store },
      candidates: { fromEmbedding: 0 },
      embeddings: { seed: 11 },
    },
  });
}

/** The processor's order of work, with `batch` events per view and commit. */
async function run(engine: Engine, events: readonly Interaction[], batch: number): Promise<Run> {
  const hits = new OnlineHitRate(10);
  const popular: string[][] = [];
  for (let start = 0; start < events.length; start += batch) {
    const view = new StoreView(engine.store, engine.mergeItem);
    for (const event of events.slice(start, start + batch)) {
      const negatives = engine.negatives.sample(engine.config.embeddings.negatives, event.itemId);
      engine.negatives.observe(event.itemId);
      await view.load([event.userId], []);
      await view.load([], engine.learner.itemsToLoad(view.user(event.userId), event, negatives));
      const user = engine.learner.learn(view, event, negatives);
      popular.push((await view.popularItems(TOP, event.timestampMs)).map((n) => n.id));
      const { evidence } = await prepareCase(view, user, engine.caseOptions, event.timestampMs, null);
      hits.observe({ event, ranked: [], candidates: evidence.candidates, modelVersion: 'popularity' });
    }
    await view.commit();
  }
  return { popular, baselineHits: hits.popularHits, cases: hits.cases };
}

function sameIds(a: readonly string[], b: readonly string[]): boolean {
  return a.length === b.length && a.every((id, i) => id === b[i]);
}

/** The ranking as of each event, from the stream alone: every interaction counts once, at its time. */
function expectedPopular(events: readonly Interaction[], halfLifeMs: number): string[][] {
  const longLog = new Map<string, number>();
  return events.map((e) => {
    longLog.set(e.itemId, logAddEvent(longLog.get(e.itemId) ?? EMPTY_LOG_SUM, e.timestampMs, halfLifeMs));
    return [...longLog]
      .sort((a, b) => b[1] - a[1] || (a[0] < b[0] ? -1 : 1))
      .slice(0, TOP)
      .map(([id]) => id);
  });
}

describe('popularity: the same stream ranks the same on the embedded store and on Qdrant', { skip }, () => {
  it('every event sees the same popular items, as of the event, and the baseline the same hits', async () => {
    const events = [...generateStream({ users: 40, items: 120, events: EVENTS, seed: 5 })];
    const prefix = `${uniqueName('pop').replace(/-/g, '_')}_`;
    const embeddedConfig = configFor({});
    const qdrantConfig = configFor({
      kind: 'qdrant',
      qdrant: { url: qdrantUrl, collectionPrefix: prefix, ...(qdrantApiKey ? { apiKey: qdrantApiKey } : {}) },
    });
    const stores: VectorStore[] = [];
    try {
      const embedded = createEmbeddedStore({ ...embeddedConfig.store, ...embeddedConfig.store.embedded, path: undefined });
      const qdrant = createQdrantStore({ config: qdrantConfig.store });
      stores.push(embedded, qdrant);
      for (const store of stores) await store.init();
      const onEmbedded = await run(buildEngine(embeddedConfig, embedded), events, 7);
      const onQdrant = await run(buildEngine(qdrantConfig, qdrant), events, 60);

      const expected = expectedPopular(events, embeddedConfig.store.popularityLongHalfLifeMs);
      const off = (got: Run): number[] => got.popular.flatMap((ids, i) => (sameIds(ids, expected[i]!) ? [] : [i]));
      const summary = [onEmbedded, onQdrant]
        .map((r, s) => `${s ? 'Qdrant' : 'embedded'}: ${off(r).length} of ${EVENTS} rankings differ, baseline ${r.baselineHits}/${r.cases} hits`)
        .join('; ');
      for (const [name, got] of [['embedded store', onEmbedded], ['Qdrant', onQdrant]] as const) {
        const first = off(got)[0];
        if (first !== undefined) {
          assert.deepEqual(got.popular[first], expected[first], `${name}, event ${first} (${summary})`);
        }
      }
      assert.ok(onEmbedded.cases > EVENTS / 2, `${onEmbedded.cases} labelled cases`);
      assert.equal(onQdrant.cases, onEmbedded.cases);
      assert.equal(onQdrant.baselineHits, onEmbedded.baselineHits, `popularity baseline hits (${summary})`);
    } finally {
      for (const store of stores) await store.close();
      const admin = new QdrantClient({
        url: qdrantUrl!,
        checkCompatibility: false,
        ...(qdrantApiKey ? { headers: { 'api-key': qdrantApiKey } } : {}),
      });
      for (const name of [`${prefix}users`, `${prefix}items`]) await admin.deleteCollection(name).catch(() => undefined);
    }
  });
});
