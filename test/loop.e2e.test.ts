import assert from 'node:assert/strict';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { Registry } from 'prom-client';
import type { CaseRecord } from '../src/cli/cases.ts';
import { NO_MALFORMED, produceInteractions, produceItems } from '../src/cli/produce.ts';
import { startSideStream } from '../src/cli/side-stream.ts';
import { loadConfig } from '../src/config/load.ts';
import { generateCatalogue, generateStream } from '../src/data/synthetic.ts';
import { repoRoot } from '../src/data/datasets.ts';
import type { Recommendation } from '../src/domain/events.ts';
import { runDistill } from '../src/distill/run.ts';
import { createEmbeddedEventLog } from '../src/eventlog/embedded/log.ts';
import { silentLogger } from '../src/logging/logger.ts';
import { buildPipeline } from '../src/main.ts';
import { loadCstTemplates } from '../src/cst/index.ts';
import { loadPromptSpec } from '../src/star/prompt/spec.ts';
import { baseOptions, tempDir } from './distill/helpers.ts';
import { eventually, uniqueName } from './helpers.ts';
import { FIXTURE_MODEL, tempRegistry } from './star/helpers.ts';
import { writeSyntheticCases } from './star/fixture-cases.ts';
import { ScriptedModel, politeScript } from './teacher/scripted-llm.ts';

/**
 * The whole loop once, on the embedded default, in one process: the pipeline serves STAR from a registry and
 * samples cases → the MARS teacher (a scripted model stands in for the LLM; the real one has its own suite)
 * answers them → outcomes label them into the data set → `runDistill` trains a challenger with the real Python
 * trainer and publishes it → the running pipeline hot-reloads it, and the next recommendations and the model
 * metric carry the new version. Skipped without the trainer (`bash train/install.sh`; .ci/run installs it).
 */
const PYTHON = join(repoRoot(), 'train', '.venv', 'bin', 'python');
const skip = existsSync(PYTHON) ? false : `${PYTHON} is absent: install the trainer with bash train/install.sh`;
const DAY = 86_400_000;

// The timeout only guards against a hang: a loaded machine runs this several times slower than an idle one.
test('loop: sample → teacher → label → distill → publish → hot reload', { skip, timeout: 900_000 }, async (t) => {
  const work = tempDir('loop-e2e-');
  const registry = tempRegistry(['champion-1']);
  const dataset = join(work.dir, 'dataset');
  const config = loadConfig({
    overrides: {
      store: { dimension: 8 },
      pipeline: { groupId: uniqueName('loop'), maxBatchRecords: 200 },
      ranking: { scorer: 'star', modelDir: registry.dir, registryPollMs: 50, retireGraceMs: 0 },
      sampling: {
        enabled: true,
        casesPerMinute: 2 / (24 * 60),
        burstCases: 6,
        candidatesPerCase: 8,
        rateWindowMs: DAY,
        outcomes: { horizonMs: 3 * DAY, allowedLatenessMs: DAY, dataDir: join(work.dir, 'teacher') },
        dataset: { dir: dataset, keep: 'all' },
      },
    },
  });
  const logger = silentLogger();
  const log = createEmbeddedEventLog(config.eventLog, logger);
  const metrics = new Registry();
  const pipeline = await buildPipeline(config, { logger, log, registry: metrics });
  const { runner, topics, engine, framing } = pipeline;
  const versions: string[] = [];
  const sink = log.consumer({ groupId: uniqueName('loop-sink'), topics: [topics.recommendations], fromBeginning: true, maxBatchRecords: 500 });
  const sinking = sink.run(async (batch) => {
    for (const r of batch.records) versions.push((await framing.decode(engine.codecs.recommendation, r.value, r.headers) as Recommendation).modelVersion);
  });
  try {
    // 1. The stream, STAR serving the champion; sampled cases go through the teacher into the data set.
    const side = await startSideStream(config, logger, pipeline, { registry: metrics, model: new ScriptedModel(politeScript(() => ['user_history', {}])), drainTimeoutMs: 60_000 });
    await runner.start();
    const world = { users: 100, items: 200, events: 1_500, seed: 3 };
    await produceItems(log, topics.items, generateCatalogue(world), engine.codecs, framing);
    const events = [...generateStream(world)];
    await produceInteractions(log, topics.interactions, events.slice(0, 1_200), engine.codecs, framing, NO_MALFORMED);
    await eventually(() => runner.processedRecords >= 1_200, 120_000);
    const summary = await side.finish();
    t.diagnostic(`teacher: ${summary.casesSampled} cases, ${summary.trajectories} trajectories, counts ${JSON.stringify(summary.manifest.counts)}`);
    assert.ok(summary.manifest.counts.kept > 0, 'labelled trajectories in the data set');
    await eventually(() => versions.length >= 1_200, 30_000);
    assert.ok(versions.every((v) => v === 'star-champion-1'));

    // 2. Distil: the exported trajectories plus outcome-only cases → challenger → gate → publish.
    const casesFile = join(work.dir, 'cases.jsonl');
    await writeSyntheticCases(join(work.dir, 'all.jsonl'), 1_500);
    const cases = readFileSync(join(work.dir, 'all.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l) as CaseRecord);
    writeFileSync(casesFile, `${cases.map((c) => JSON.stringify(c)).join('\n')}\n`);
    const report = await runDistill({
      ...baseOptions({ stateDir: join(work.dir, 'distill'), registryDir: registry.dir, trajectoriesDir: dataset, casesFile }),
      spec: loadPromptSpec(),
      cstTemplateVersion: loadCstTemplates().version,
      holdoutShare: 0.15,
      minHoldoutCases: 20,
      // The plumbing is under test here; the gate's decisions have their own tests (test/distill/gate.test.ts).
      margin: -1,
      trainerSettings: { epochs: 1, threads: 1, batch_lists: 8, grpo_batch_lists: 8, grpo_group: 4, tokenizer: join(FIXTURE_MODEL, 'tokenizer.json') },
    });
    t.diagnostic(report.summary);
    assert.equal(report.decision, 'published', report.summary);
    assert.ok(report.data.training!.trajectories.trained > 0, 'teacher trajectories were trained on');
    const published = `star-${report.published!.version}`;

    // 3. Hot reload: the running pipeline picks the new model up; the rest of the stream is ranked with it.
    await eventually(async () => (await metrics.getSingleMetric('starstream_model_info')?.get())?.values.some((v) => v.labels.version === published && v.value === 1) ?? false, 20_000);
    await produceInteractions(log, topics.interactions, events.slice(1_200), engine.codecs, framing, NO_MALFORMED);
    await eventually(() => runner.processedRecords >= events.length, 60_000);
    await eventually(() => versions.length >= events.length, 30_000);
    assert.ok(versions.slice(1_200).every((v) => v === published), `after the reload: ${[...new Set(versions.slice(1_200))].join(', ')}`);
  } finally {
    await runner.stop();
    await sink.stop();
    await sinking;
    await pipeline.scorers.close();
    await log.close();
    registry.cleanup();
    work.cleanup();
  }
});
