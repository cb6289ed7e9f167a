import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { Registry } from 'prom-client';
import { formatStatus } from '../../src/cli/experiment.ts';
import { NO_MALFORMED, produceInteractions, produceItems } from '../../src/cli/produce.ts';
import { loadConfig } from '../../src/config/load.ts';
import type { Config, ConfigInput } from '../../src/config/schema.ts';
import { generateCatalogue, generateStream } from '../../src/data/synthetic.ts';
import type { Interaction, Recommendation } from '../../src/domain/events.ts';
import { createEmbeddedEventLog } from '../../src/eventlog/embedded/log.ts';
import { ConfigError } from '../../src/errors/index.ts';
import { ndcgAt } from '../../src/eval/metrics.ts';
import { assignArm } from '../../src/experiments/assign.ts';
import { compileExperiment } from '../../src/experiments/definition.ts';
import { readLatestReport } from '../../src/experiments/runtime.ts';
import { silentLogger } from '../../src/logging/logger.ts';
import { buildPipeline, type Pipeline } from '../../src/main.ts';
import { eventually, uniqueName } from '../helpers.ts';
import { baselineVsBlend } from './helpers.ts';

/**
 * Issue 19 end to end on the embedded default (in-process log and store): two arms (baseline and the online
 * blend) serve side by side; every published recommendation carries its user's arm and that arm's model; a
 * restart keeps users in their arms and goes on counting from the saved state; the per-arm counts of the
 * report and of the metrics equal an offline recount of the published recommendations and the outcomes.
 */

const K = 10;
const world = { users: 80, items: 150, events: 1_200, seed: 19 };
const events: Interaction[] = [...generateStream(world)];
const HALF = 600;
const dir = mkdtempSync(join(tmpdir(), 'starstream-experiment-'));
after(() => rmSync(dir, { recursive: true, force: true }));
const logger = silentLogger();

const experimentInput = { ...baselineVsBlend('e2e', 'issue-19', join(dir, 'experiments')), k: K };

function config(groupId: string, overrides: ConfigInput = {}): Config {
  return loadConfig({
    overrides: {
      store: { dimension: 8 },
      ranking: { topK: K },
      pipeline: { groupId, maxBatchRecords: 100 },
      eventLog: { topics: { partitions: 2 } },
      experiment: experimentInput,
      ...overrides,
    },
  });
}

async function close(pipeline: Pipeline): Promise<void> {
  await pipeline.runner.stop();
  await pipeline.scorers.close();
  await pipeline.engine.store.close();
}

/** Counter values by label set, from a registry. */
async function counter(registry: Registry, name: string): Promise<Map<string, number>> {
  const metric = registry.getSingleMetric(name);
  const out = new Map<string, number>();
  if (!metric) return out;
  for (const v of (await metric.get()).values) out.set(String(v.labels.arm), v.value);
  return out;
}

interface Counts {
  trials: number;
  hits: number;
  ndcg: number;
}

describe('online experiment in the running pipeline (embedded default)', () => {
  it('rejects a bad experiment at startup, naming the field', () => {
    assert.throws(
      () => config('x', { experiment: { ...experimentInput, arms: [experimentInput.arms[0]!, { ...experimentInput.arms[1]!, share: 0.2 }] } }),
      (err: unknown) => err instanceof ConfigError && /experiment\.arms/.test(err.message),
    );
    assert.throws(
      () => config('x', { experiment: { ...experimentInput, champion: 'nobody' } }),
      (err: unknown) => err instanceof ConfigError && /experiment\.champion/.test(err.message),
    );
  });

  it('serves both arms, keeps users in their arms across a restart, and counts what an offline recount counts', async () => {
    const groupId = uniqueName('experiment');
    const log = createEmbeddedEventLog(config(groupId).eventLog, logger);
    const recs: Recommendation[] = [];
    const registries = [new Registry(), new Registry()];

    const first = await buildPipeline(config(groupId), { logger, log, registry: registries[0]! });
    const { topics, engine, framing } = first;
    const sink = log.consumer({ groupId: uniqueName('sink'), topics: [topics.recommendations], fromBeginning: true, maxBatchRecords: 500 });
    const sinking = sink.run(async (batch) => {
      for (const r of batch.records) recs.push(await framing.decode(engine.codecs.recommendation, r.value, r.headers));
    });
    await first.runner.start();
    await produceItems(log, topics.items, generateCatalogue(world), engine.codecs, framing);
    await produceInteractions(log, topics.interactions, events.slice(0, HALF), engine.codecs, framing, NO_MALFORMED);
    await eventually(() => first.runner.processedRecords >= HALF, 120_000);
    await eventually(() => recs.length >= HALF, 60_000);
    await close(first);

    // The restart: a new process on the same log and group, the experiment's state read back from its folder.
    const second = await buildPipeline(config(groupId), { logger, log, registry: registries[1]! });
    await second.runner.start();
    await produceInteractions(log, topics.interactions, events.slice(HALF), engine.codecs, framing, NO_MALFORMED);
    await eventually(() => second.runner.processedRecords >= events.length - HALF, 120_000);
    await eventually(() => recs.length >= events.length, 60_000);
    await close(second);
    await sink.stop();
    await sinking;
    await log.close();

    // Every event published once (rate limit off), with its user's arm and that arm's model.
    assert.equal(recs.length, events.length);
    const experiment = compileExperiment(experimentInput);
    const byEvent = new Map(recs.map((r) => [r.eventId, r]));
    assert.equal(byEvent.size, events.length);
    const armsSeen = new Set<string>();
    for (const r of recs) {
      const arm = assignArm(r.userId, experiment).arm;
      assert.equal(r.arm, arm, `user ${r.userId} stays in ${arm}`);
      armsSeen.add(arm);
      if (arm === 'control') assert.match(r.modelVersion, /^baseline/);
      else assert.match(r.modelVersion, /^online-1/);
    }
    assert.deepEqual([...armsSeen].sort(), ['blend', 'control']);

    // Offline recount: each user's list joined to the user's next event, in log order per user.
    const recount = { all: new Map<string, Counts>(), phase: [new Map<string, Counts>(), new Map<string, Counts>()] };
    const pending = new Map<string, Recommendation>();
    events.forEach((e, i) => {
      const previous = pending.get(e.userId);
      if (previous) {
        const rank = previous.items.findIndex((item) => item.itemId === e.itemId);
        for (const m of [recount.all, recount.phase[i < HALF ? 0 : 1]!]) {
          const c = m.get(previous.arm!) ?? { trials: 0, hits: 0, ndcg: 0 };
          c.trials++;
          c.hits += rank >= 0 && rank < K ? 1 : 0;
          c.ndcg += ndcgAt(rank, K);
          m.set(previous.arm!, c);
        }
      }
      pending.set(e.userId, byEvent.get(e.eventId)!);
    });

    const report = readLatestReport(experimentInput.stateDir, experimentInput.name);
    assert.ok(report, 'the last look wrote its report');
    for (const s of [report.champion, ...report.challengers]) {
      const expected = recount.all.get(s.arm)!;
      assert.ok(expected.trials > 50, `${s.arm} has outcomes`);
      assert.equal(s.outcomes, expected.trials, `${s.arm} outcomes`);
      assert.equal(s.hits, expected.hits, `${s.arm} hits`);
      assert.ok(Math.abs(s.ndcg! - expected.ndcg / expected.trials) < 1e-9, `${s.arm} NDCG`);
      // A list without candidates is never scored (`rankCase`): no request.
      assert.equal(s.requests, recs.filter((r) => r.arm === s.arm && r.items.length > 0).length, `${s.arm} scoring requests`);
    }
    assert.equal(report.decision, 'continue');
    assert.deepEqual(report.serving, { control: true, blend: true });

    // Prometheus counters count per process: each run's equal the recount of the outcomes it joined.
    for (const [i, registry] of registries.entries()) {
      const outcomes = await counter(registry, 'starstream_experiment_outcomes_total');
      const hits = await counter(registry, 'starstream_experiment_hits_total');
      for (const [arm, c] of recount.phase[i]!) {
        assert.equal(outcomes.get(arm), c.trials, `run ${i + 1}: ${arm} outcomes`);
        assert.equal(hits.get(arm), c.hits, `run ${i + 1}: ${arm} hits`);
      }
    }

    // The status table shows both arms with their intervals.
    const status = formatStatus(report);
    assert.match(status, /^experiment e2e: continue after \d+ outcomes/);
    for (const arm of ['control', 'blend']) assert.match(status, new RegExp(`^${arm}\\s+(champion|challenger)\\s+yes\\s+\\d+\\s+[\\d.]+%\\s+\\[[\\d.]+%, [\\d.]+%\\]`, 'm'));
  });
});
