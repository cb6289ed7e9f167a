import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { loadConfig } from '../../src/config/load.ts';
import { loadCstTemplates } from '../../src/cst/index.ts';
import { datasetDir } from '../../src/data/datasets.ts';
import { loadMovieLens } from '../../src/data/movielens.ts';
import { buildEngine } from '../../src/main.ts';
import { replayAndCheck } from './replay.ts';

/**
 * The CST sentences of a replay of ml-100k's first events, checked against the state at each event. With the
 * default config (10 recent items seed co-occurrence, the store's window is 5), cst-1 said "N of your last 5
 * items" with N up to 10 on most co-occurrence sentences.
 */

const ML_DIR = datasetDir('ml-100k');
const missing = existsSync(join(ML_DIR, 'u.data')) ? false : `MovieLens 100K not found at ${ML_DIR}`;
if (missing) console.log(`# skipping the ml-100k CST suite: ${missing}`);

/** Enough for long histories (the heaviest early users pass 100 ratings) in seconds on 2 cores. */
const EVENTS = 3_000;

describe('CST sentences on a replay of ml-100k', { skip: missing }, () => {
  it('state only numbers true of the state as of their event', async () => {
    const data = await loadMovieLens(ML_DIR);
    const engine = buildEngine(loadConfig({ overrides: { store: { dimension: 16 } } }));
    await engine.store.init();
    const templates = loadCstTemplates();
    const report = await replayAndCheck(engine, data.items, data.interactions.slice(0, EVENTS), templates, { checkEvery: 3 });
    console.log(`# ml-100k: ${report.cases} cases, ${report.sentences} sentences ${JSON.stringify(Object.fromEntries(report.byKey))}, ${report.contradictions.length} contradictions`);
    assert.deepEqual(report.contradictions.slice(0, 10), [], `${report.contradictions.length} of ${report.sentences} sentences contradict the state`);
    for (const key of ['cooccurrence', 'neighbours', 'category', 'embedding', 'popularity']) {
      assert.ok((report.byKey.get(key) ?? 0) > 100, `${key}: ${report.byKey.get(key) ?? 0} sentences`);
    }
    assert.ok(!report.byKey.has('unknown'));
  });
});
