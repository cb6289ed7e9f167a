import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { Registry } from 'prom-client';
import { NO_MALFORMED, produceInteractions, produceItems } from '../../src/cli/produce.ts';
import { loadConfig } from '../../src/config/load.ts';
import type { Config } from '../../src/config/schema.ts';
import { loadCstTemplates, parseSentence } from '../../src/cst/index.ts';
import type { Interaction } from '../../src/domain/events.ts';
import { generateCatalogue, generateStream } from '../../src/data/synthetic.ts';
import { BadInputError } from '../../src/errors/index.ts';
import { silentLogger } from '../../src/logging/logger.ts';
import { buildPipeline, type Pipeline } from '../../src/main.ts';
import { evidenceTimeMs, startPipelineOpsServer, streamTimeRecommender, type PipelineOpsServer } from '../../src/ops/service.ts';
import { decayedCount } from '../../src/store/popularity.ts';
import { eventually } from '../helpers.ts';

/**
 * A replay of data from 1998 through the pipeline, then the API: its explanations must be as of the stream's
 * time. Read at the wall clock, every decayed count of such data is 0 (the API once said "New to the catalogue:
 * 0 interactions so far" of the most popular items).
 */

const WORLD = { users: 40, items: 120, events: 500, seed: 23, startMs: Date.UTC(1998, 0, 1), durationMs: 20 * 86_400_000 } as const;
const templates = loadCstTemplates();

interface Body {
  coldStart: boolean;
  items: { itemId: string; score: number; evidence: string[] }[];
}

describe('the on-demand API explains at the stream time of a replay of old data', () => {
  let config: Config;
  let pipeline: Pipeline;
  let server: PipelineOpsServer;
  let events: Interaction[];
  let lastEventMs: number;

  before(async () => {
    config = loadConfig({ overrides: { store: { dimension: 16 }, ops: { host: '127.0.0.1', port: 0 }, logLevel: 'silent' } });
    pipeline = await buildPipeline(config, { logger: silentLogger(), registry: new Registry() });
    server = await startPipelineOpsServer(config, pipeline, silentLogger());
    const { log, topics, engine, framing, runner } = pipeline;
    await runner.start();
    await produceItems(log, topics.items, generateCatalogue(WORLD), engine.codecs, framing);
    events = [...generateStream(WORLD)];
    lastEventMs = Math.max(...events.map((e) => e.timestampMs));
    const produced = await produceInteractions(log, topics.interactions, events, engine.codecs, framing, NO_MALFORMED);
    await eventually(() => runner.processedRecords >= produced, 300_000);
  });

  after(async () => {
    await pipeline.runner.stop();
    await pipeline.scorers.close();
    await pipeline.log.close();
    await pipeline.engine.store.close();
    await server.close();
  });

  async function get(path: string): Promise<Body> {
    const res = await fetch(`${server.url}${path}`);
    assert.equal(res.status, 200);
    return (await res.json()) as Body;
  }

  /** Each popularity sentence's count against the item's decayed count read at `atMs`. */
  async function popularityCounts(body: Body): Promise<{ said: number; atStream: number; atWallClock: number }[]> {
    const items = await pipeline.engine.store.getItems(body.items.map((i) => i.itemId));
    const out = [];
    for (const item of body.items) {
      for (const s of item.evidence) {
        const parsed = parseSentence(s, templates);
        assert.ok(parsed, `"${s}" fits a template`);
        if (parsed.key !== 'popularity') continue;
        const longLog = items.get(item.itemId)!.popularity.longLog;
        const halfLife = config.store.popularityLongHalfLifeMs;
        out.push({ said: Number(parsed.values.count), atStream: decayedCount(longLog, lastEventMs, halfLife), atWallClock: decayedCount(longLog, Date.now(), halfLife) });
      }
    }
    return out;
  }

  it('a known user: popularity counts are the decayed counts at the last event, not 0', async () => {
    const user = events.at(-1)!.userId;
    const body = await get(`/v1/users/${user}/recommendations?k=10`);
    assert.equal(body.coldStart, false);
    const counts = await popularityCounts(body);
    assert.ok(counts.length > 0, 'some item explains its popularity');
    for (const c of counts) {
      assert.equal(c.said, Math.round(c.atStream));
      assert.ok(c.said >= 1);
      assert.equal(Math.round(c.atWallClock), 0, 'at the wall clock the same count would be 0');
    }
    assert.ok(body.items.some((i) => i.score !== 0));
  });

  it('a user the stream has not seen: told so, popular items with their stream-time popularity, no taste match', async () => {
    const body = await get('/v1/users/nobody-xyz/recommendations?k=3');
    assert.equal(body.coldStart, true);
    assert.equal(body.items.length, 3);
    for (const item of body.items) {
      assert.equal(item.evidence[0], templates.templates.newUser);
      assert.ok(!item.evidence.some((s) => s.includes('taste match')), item.evidence.join(' | '));
      assert.ok(!item.evidence.some((s) => parseSentence(s, templates)?.key === 'cold'), 'popular items are not new to the catalogue');
    }
    const counts = await popularityCounts(body);
    assert.ok(counts.length > 0);
    for (const c of counts) assert.equal(c.said, Math.round(c.atStream));
  });

  it('a caller may ask for a later time (the counts decay), never an earlier one', async () => {
    const recommend = streamTimeRecommender(config, pipeline);
    const user = events.at(-1)!.userId;
    const yearLater = lastEventMs + 365 * 86_400_000;
    const later = await recommend(user, 10, yearLater);
    const sentences = later.ranked.flatMap((r) => r.evidence.sentences);
    assert.ok(sentences.some((s) => parseSentence(s, templates)?.key === 'quiet'), 'a year on, the items are quiet');
    assert.ok(!sentences.some((s) => parseSentence(s, templates)?.key === 'popularity'));
    await assert.rejects(recommend(user, 10, lastEventMs - 86_400_000), (err: unknown) => err instanceof BadInputError && err.code === 'AT_BEFORE_STREAM_TIME');
  });

  it('evidenceTimeMs: the stream time by default, a later time when asked', () => {
    assert.equal(evidenceTimeMs(1_000), 1_000);
    assert.equal(evidenceTimeMs(1_000, 5_000), 5_000);
    assert.throws(() => evidenceTimeMs(1_000, 999), BadInputError);
    assert.throws(() => evidenceTimeMs(1_000, Number.NaN), BadInputError);
  });
});
