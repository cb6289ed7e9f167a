import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it, type TestContext } from 'node:test';
import { Registry } from 'prom-client';
import { formatStatus } from '../../src/cli/experiment.ts';
import { NO_MALFORMED, produceInteractions, produceItems } from '../../src/cli/produce.ts';
import { loadConfig } from '../../src/config/load.ts';
import type { Config, ConfigInput } from '../../src/config/schema.ts';
import { generateCatalogue, generateStream } from '../../src/data/synthetic.ts';
import type { Interaction, Recommendation } from '../../src/domain/events.ts';
import { createEmbeddedEventLog } from '../../src/eventlog/embedded/log.ts';
import type { EventLog } from '../../src/eventlog/port.ts';
import { ConfigError } from '../../src/errors/index.ts';
import { ndcgAt } from '../../src/eval/metrics.ts';
import { assignArm } from '../../src/experiments/assign.ts';
import { compileExperiment } from '../../src/experiments/definition.ts';
import { readLatestReport } from '../../src/experiments/runtime.ts';
import { silentLogger } from '../../src/logging/logger.ts';
import { buildPipeline } from '../../src/main.ts';
import { closePipeline, eventually, uniqueName } from '../helpers.ts';
import { brokers, createTestTopics, pipelineEnv, stopOwnBroker, testEventLog } from '../pipeline/kafka/harness.ts';
import { tempRegistry } from '../star/helpers.ts';
import { baselineVsBlend, baselineVsStar } from './helpers.ts';

/**
 * Issue 19 end to end: two arms serve side by side, on the embedded default (in-process log and store) and on
 * the local Kafka broker: the baseline against a STAR model version from a registry, and the baseline against
 * an online blend. Every published recommendation carries its user's arm and that arm's model; a restart keeps
 * users in their arms and goes on counting from the saved state; the per-arm counts of the report and of the
 * metrics equal an offline recount of the published recommendations and the outcomes.
 */

const K = 10;
const world = { users: 80, items: 150, events: 1_200, seed: 19 };
const events: Interaction[] = [...generateStream(world)];
const HALF = 600;
const dir = mkdtempSync(join(tmpdir(), 'starstream-experiment-'));
const registry = tempRegistry(['champion-1', 'v2']);
after(() => {
  rmSync(dir, { recursive: true, force: true });
  registry.cleanup();
});
after(() => stopOwnBroker());
const logger = silentLogger();

type ExperimentSection = NonNullable<ConfigInput['experiment']> & { readonly name: string; readonly stateDir: string };

/** One scenario: where the pipeline runs and which arms it serves. */
interface Scenario {
  readonly experiment: ExperimentSection;
  /** The challenger arm's `modelVersion`. */
  readonly challengerModel: RegExp;
  /** The config of the pipeline (both runs) and the log they share, the test's to close. */
  setup(t: TestContext, overrides: ConfigInput): Promise<{ config: Readonly<Config>; log: EventLog }>;
}

const embedded = (experiment: ExperimentSection, challengerModel: RegExp): Scenario => ({
  experiment,
  challengerModel,
  async setup(_t, overrides) {
    const config = loadConfig({ overrides: { ...overrides, pipeline: { groupId: uniqueName('experiment'), maxBatchRecords: 100 } } });
    return { config, log: createEmbeddedEventLog(config.eventLog, logger) };
  },
});

const kafka = (experiment: ExperimentSection, challengerModel: RegExp): Scenario => ({
  experiment,
  challengerModel,
  async setup(t, overrides) {
    const env = pipelineEnv({ brokers: await brokers(), partitions: 2, maxBatchRecords: 100 });
    const topics = await createTestTopics(t, env);
    const config = loadConfig({ env, overrides });
    assert.equal(config.eventLog.topics.prefix, topics.config.eventLog.topics.prefix);
    return { config, log: testEventLog(t, { ...topics, config }) };
  },
});

function experimentOverrides(experiment: ExperimentSection): ConfigInput {
  return {
    store: { dimension: 8 },
    ranking: { topK: K, modelDir: registry.dir },
    eventLog: { topics: { partitions: 2 } },
    experiment: { ...experiment, k: K },
  };
}

/** Counter values by arm, from a registry. */
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

/** Runs the stream in two processes (a restart at HALF) and checks arms, report, metrics and status against a recount. */
async function runAndRecount(t: TestContext, scenario: Scenario): Promise<void> {
  const experimentInput = { ...scenario.experiment, k: K };
  const { config, log } = await scenario.setup(t, experimentOverrides(scenario.experiment));
  // Kept by event id: a redelivered batch publishes its recommendations again (at-least-once).
  const recs = new Map<string, Recommendation>();
  let published = 0;
  const registries = [new Registry(), new Registry()];

  const first = await buildPipeline(config, { logger, log, registry: registries[0]! });
  const { topics, engine, framing } = first;
  const sink = log.consumer({ groupId: uniqueName('sink'), topics: [topics.recommendations], fromBeginning: true, maxBatchRecords: 500 });
  const sinking = sink.run(async (batch) => {
    for (const r of batch.records) {
      const rec = await framing.decode(engine.codecs.recommendation, r.value, r.headers);
      published++;
      if (!recs.has(rec.eventId)) recs.set(rec.eventId, rec);
    }
  });
  try {
    await first.runner.start();
    await produceItems(log, topics.items, generateCatalogue(world), engine.codecs, framing);
    await produceInteractions(log, topics.interactions, events.slice(0, HALF), engine.codecs, framing, NO_MALFORMED);
    await eventually(() => first.runner.processedRecords >= HALF, 300_000);
    await eventually(() => recs.size >= HALF, 120_000);
    await closePipeline(first);

    // The restart: a new pipeline on the same log and group, the experiment's state read back from its folder.
    const second = await buildPipeline(config, { logger, log, registry: registries[1]! });
    await second.runner.start();
    await produceInteractions(log, topics.interactions, events.slice(HALF), engine.codecs, framing, NO_MALFORMED);
    await eventually(() => second.runner.processedRecords >= events.length - HALF, 300_000);
    await eventually(() => recs.size >= events.length, 120_000);
    await closePipeline(second);
  } finally {
    await sink.stop();
    await sinking;
    await log.close();
  }

  // Every event published (once, unless a batch was redelivered), with its user's arm and that arm's model.
  assert.equal(recs.size, events.length);
  const experiment = compileExperiment(experimentInput);
  const armsSeen = new Set<string>();
  for (const r of recs.values()) {
    const arm = assignArm(r.userId, experiment).arm;
    assert.equal(r.arm, arm, `user ${r.userId} stays in ${arm}`);
    armsSeen.add(arm);
    if (arm === 'control') assert.match(r.modelVersion, /^baseline/);
    else assert.match(r.modelVersion, scenario.challengerModel);
  }
  assert.deepEqual([...armsSeen].sort(), [...experiment.arms.map((a) => a.name)].sort());

  // Offline recount: each user's list joined to the user's next event, in log order per user.
  const challenger = experiment.arms[1]!.name;
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
    pending.set(e.userId, recs.get(e.eventId)!);
  });

  const report = readLatestReport(experimentInput.stateDir, experimentInput.name);
  assert.ok(report, 'the last look wrote its report');
  for (const s of [report.champion, ...report.challengers]) {
    const expected = recount.all.get(s.arm)!;
    assert.ok(expected.trials > 50, `${s.arm} has outcomes`);
    assert.equal(s.outcomes, expected.trials, `${s.arm} outcomes`);
    assert.equal(s.hits, expected.hits, `${s.arm} hits`);
    assert.ok(Math.abs(s.ndcg! - expected.ndcg / expected.trials) < 1e-9, `${s.arm} NDCG`);
    // A list without candidates is never scored (`rankCase`): no request. A redelivered batch is scored again.
    const scored = [...recs.values()].filter((r) => r.arm === s.arm && r.items.length > 0).length;
    if (published === recs.size) assert.equal(s.requests, scored, `${s.arm} scoring requests`);
    else assert.ok(s.requests >= scored, `${s.arm} scoring requests`);
  }
  assert.equal(report.decision, 'continue');
  assert.deepEqual(report.serving, { control: true, [challenger]: true });

  // Prometheus counters count per process: each run's equal the recount of the outcomes it joined.
  for (const [i, r] of registries.entries()) {
    const outcomes = await counter(r, 'starstream_experiment_outcomes_total');
    const hits = await counter(r, 'starstream_experiment_hits_total');
    for (const [arm, c] of recount.phase[i]!) {
      assert.equal(outcomes.get(arm), c.trials, `run ${i + 1}: ${arm} outcomes`);
      assert.equal(hits.get(arm), c.hits, `run ${i + 1}: ${arm} hits`);
    }
  }

  // The status table shows both arms with their intervals.
  const status = formatStatus(report);
  assert.match(status, new RegExp(`^experiment ${experimentInput.name}: continue after \\d+ outcomes`));
  for (const arm of ['control', challenger]) assert.match(status, new RegExp(`^${arm}\\s+(champion|challenger)\\s+yes\\s+\\d+\\s+[\\d.]+%\\s+\\[[\\d.]+%, [\\d.]+%\\]`, 'm'));
}

describe('online experiment in the running pipeline', { timeout: 1_200_000 }, () => {
  const blend = baselineVsBlend('e2e-blend', 'issue-19', join(dir, 'blend'));

  it('rejects a bad experiment at startup, naming the field', () => {
    const config = (experiment: ConfigInput['experiment']) => loadConfig({ overrides: { ...experimentOverrides(blend), experiment } });
    assert.throws(
      () => config({ ...blend, arms: [blend.arms[0]!, { ...blend.arms[1]!, share: 0.2 }] }),
      (err: unknown) => err instanceof ConfigError && /experiment\.arms/.test(err.message),
    );
    assert.throws(
      () => config({ ...blend, champion: 'nobody' }),
      (err: unknown) => err instanceof ConfigError && /experiment\.champion/.test(err.message),
    );
  });

  it('embedded default, baseline against a STAR model: both serve, users keep their arms across a restart, the counts equal a recount', (t) =>
    runAndRecount(t, embedded(baselineVsStar('e2e-star', 'issue-19', join(dir, 'star'), 'v2'), /^star-v2$/)));

  it('embedded default, baseline against an online blend: the same', (t) => runAndRecount(t, embedded(blend, /^online-1/)));

  it('local Kafka broker, baseline against a STAR model: the same', (t) =>
    runAndRecount(t, kafka(baselineVsStar('kafka-star', 'issue-19', join(dir, 'kafka-star'), 'v2'), /^star-v2$/)));
});
