import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { NO_MALFORMED, produceInteractions } from '../../src/cli/produce.ts';
import { loadConfig } from '../../src/config/load.ts';
import type { Config } from '../../src/config/schema.ts';
import { generateStream } from '../../src/data/synthetic.ts';
import type { Interaction, Recommendation } from '../../src/domain/events.ts';
import { createEmbeddedEventLog } from '../../src/eventlog/embedded/log.ts';
import type { EventLog } from '../../src/eventlog/port.ts';
import { readLatestReport } from '../../src/experiments/runtime.ts';
import { silentLogger } from '../../src/logging/logger.ts';
import { buildPipeline, type Pipeline } from '../../src/main.ts';
import { closePipeline, eventually, runUntil, uniqueName } from '../helpers.ts';
import { checkpointPastStart, checkpointPosition } from '../store/checkpoint-file.ts';
import { baselineVsBlend } from './helpers.ts';

/**
 * Issue 19 with issue 16: an experiment's counts move with the offsets. A pipeline with checkpoints runs the
 * whole stream and stops cleanly (its `state.json` counts every event); the checkpoint file is then put back
 * to one taken mid-run, as if the process had crashed after it. The restart resumes at the checkpoint's
 * positions and consumes the rest again: the report must count each outcome once, exactly as a recount of the
 * lists that were in force (the first run's before the checkpoint, the second's after it).
 */

const K = 10;
const N = 2_000;
const events: Interaction[] = [...generateStream({ events: N, users: 60, items: 120, seed: 41 })];
const dir = mkdtempSync(join(tmpdir(), 'starstream-experiment-checkpoint-'));
after(() => rmSync(dir, { recursive: true, force: true }));
const logger = silentLogger();
const experiment = { ...baselineVsBlend('checkpointed', 'issue-19-16', join(dir, 'experiments')), k: K };

function config(path: string, groupId: string): Config {
  return loadConfig({
    overrides: {
      store: { dimension: 8, embedded: { path, checkpointIntervalMs: 0, checkpointEveryBatches: 4, indexBuild: 'inline' } },
      ranking: { topK: K },
      pipeline: { groupId, maxBatchRecords: 100 },
      eventLog: { topics: { partitions: 1 } },
      experiment,
    },
  });
}

function produce(log: EventLog, pipeline: Pipeline, slice: readonly Interaction[]): Promise<unknown> {
  return produceInteractions(log, pipeline.topics.interactions, slice, pipeline.engine.codecs, pipeline.framing, NO_MALFORMED);
}

describe('experiment counts in the checkpoint', () => {
  it('a restart from a mid-run checkpoint counts each outcome once, as a recount of the lists in force', async () => {
    const path = join(dir, 'state.snapshot');
    const groupId = uniqueName('experiment-checkpoint');
    const log = createEmbeddedEventLog(config(path, groupId).eventLog, logger);
    const first = await buildPipeline(config(path, groupId), { logger, log });
    const { topics, engine, framing } = first;
    // A group that never commits keeps the records on the embedded log after the pipeline's group commits them.
    log.consumer({ groupId: uniqueName('holder'), topics: [topics.interactions], fromBeginning: true, maxBatchRecords: 1 });
    const lists: Map<string, Recommendation>[] = [new Map(), new Map()];
    let phase = 0;
    const sink = log.consumer({ groupId: uniqueName('sink'), topics: [topics.recommendations], fromBeginning: true, maxBatchRecords: 500 });
    const sinking = sink.run(async (batch) => {
      for (const r of batch.records) {
        const rec = await framing.decode(engine.codecs.recommendation, r.value, r.headers);
        lists[phase]!.set(rec.eventId, rec);
      }
    });

    const half = 1_000;
    await produce(log, first, events.slice(0, half));
    await runUntil(first, half);
    const saved = await checkpointPastStart(path, topics.interactions);
    await produce(log, first, events.slice(half));
    await runUntil(first, N);
    await closePipeline(first);
    await eventually(() => lists[0]!.size >= N, 60_000);
    const ahead = readLatestReport(experiment.stateDir, experiment.name)!;
    assert.ok(ahead.outcomes > 0);

    // The crash: the state on disk is the mid-run checkpoint; state.json and the group's offsets are ahead of it.
    const position = checkpointPosition(path, topics.interactions, saved)!;
    assert.ok(position > 0 && position < N, `mid-run checkpoint at ${position}`);
    writeFileSync(path, saved);
    phase = 1;
    const second = await buildPipeline(config(path, groupId), { logger, log });
    await runUntil(second, N - position);
    await eventually(() => lists[1]!.size >= N - position, 60_000);
    await closePipeline(second);
    await sink.stop();
    await sinking;
    await log.close();
    assert.equal(second.runner.processedRecords, N - position, 'resumed at the checkpoint, behind the committed offsets');

    // The recount: each event's outcome against its user's previous list, the one in force when it was joined.
    const recount = new Map<string, { outcomes: number; hits: number; requests: number }>();
    const pending = new Map<string, Recommendation>();
    events.forEach((e, i) => {
      const previous = pending.get(e.userId);
      if (previous) {
        const c = recount.get(previous.arm!) ?? { outcomes: 0, hits: 0, requests: 0 };
        const rank = previous.items.findIndex((item) => item.itemId === e.itemId);
        c.outcomes++;
        c.hits += rank >= 0 && rank < K ? 1 : 0;
        recount.set(previous.arm!, c);
      }
      const list = lists[i < position ? 0 : 1]!.get(e.eventId)!;
      assert.ok(list, `event ${i} published`);
      if (list.items.length > 0) {
        const c = recount.get(list.arm!) ?? { outcomes: 0, hits: 0, requests: 0 };
        c.requests++;
        recount.set(list.arm!, c);
      }
      pending.set(e.userId, list);
    });

    const report = readLatestReport(experiment.stateDir, experiment.name)!;
    let total = 0;
    for (const s of [report.champion, ...report.challengers]) {
      const want = recount.get(s.arm)!;
      assert.equal(s.outcomes, want.outcomes, `${s.arm} outcomes`);
      assert.equal(s.hits, want.hits, `${s.arm} hits`);
      assert.equal(s.requests, want.requests, `${s.arm} scoring requests`);
      total += s.outcomes;
    }
    // Counted once: the clean stop's state.json had every outcome already; restoring it would have doubled the rest.
    assert.equal(total, ahead.outcomes);
  });
});
