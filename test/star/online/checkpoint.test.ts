import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { NO_MALFORMED, produceInteractions } from '../../../src/cli/produce.ts';
import { loadConfig } from '../../../src/config/load.ts';
import type { Config } from '../../../src/config/schema.ts';
import { generateStream } from '../../../src/data/synthetic.ts';
import { createEmbeddedEventLog } from '../../../src/eventlog/embedded/log.ts';
import { silentLogger } from '../../../src/logging/logger.ts';
import { buildPipeline } from '../../../src/main.ts';
import { DEFAULT_BASELINE_WEIGHTS } from '../../../src/star/baseline/scorer.ts';
import { OnlineBlendScorer, type OnlineBlendState } from '../../../src/star/online/scorer.ts';
import { startWeights } from '../../../src/star/online/terms.ts';
import { closePipeline, runUntil, uniqueName } from '../../helpers.ts';
import { checkpointAttachments, checkpointPastStart, checkpointPosition } from '../../store/checkpoint-file.ts';

/**
 * `ranking.scorer=online` with checkpoints: the blend's weights move with the offsets. The checkpoint file is
 * put back to one taken mid-run (a crash after it); the restarted pipeline's blend starts from that
 * checkpoint's weights, guard window and serving mode, not from the start weights.
 */

const N = 1_600;
const events = [...generateStream({ events: N, users: 50, items: 120, seed: 43 })];
const dir = mkdtempSync(join(tmpdir(), 'starstream-online-checkpoint-'));
after(() => rmSync(dir, { recursive: true, force: true }));
const logger = silentLogger();

function config(path: string, groupId: string): Config {
  return loadConfig({
    overrides: {
      store: { dimension: 8, embedded: { path, checkpointIntervalMs: 0, checkpointEveryBatches: 3, indexBuild: 'inline' } },
      ranking: { scorer: 'online', online: { guardWindow: 200, guardMinOutcomes: 50 } },
      pipeline: { groupId, maxBatchRecords: 100 },
      eventLog: { topics: { partitions: 1 } },
    },
  });
}

const blendOf = (scorer: unknown): OnlineBlendScorer => {
  assert.ok(scorer instanceof OnlineBlendScorer, 'ranking.scorer=online serves an online blend');
  return scorer;
};

describe('online blend in the checkpoint', () => {
  it('a restart from a mid-run checkpoint resumes the blend at that checkpoint\'s weights and window', async () => {
    const path = join(dir, 'state.snapshot');
    const groupId = uniqueName('online-checkpoint');
    const log = createEmbeddedEventLog(config(path, groupId).eventLog, logger);
    const first = await buildPipeline(config(path, groupId), { logger, log });
    const produce = (slice: typeof events) => produceInteractions(log, first.topics.interactions, slice, first.engine.codecs, first.framing, NO_MALFORMED);
    // A group that never commits keeps the records on the embedded log for the restart.
    log.consumer({ groupId: uniqueName('holder'), topics: [first.topics.interactions], fromBeginning: true, maxBatchRecords: 1 });
    await produce(events.slice(0, N / 2));
    await runUntil(first, N / 2);
    const saved = await checkpointPastStart(path, first.topics.interactions);
    await produce(events.slice(N / 2));
    await runUntil(first, N);
    const ended = blendOf(first.scorers.current()).checkpointAttachment().capture();
    await closePipeline(first);

    const atCrash = checkpointAttachments(saved)['online-blend'] as OnlineBlendState;
    assert.ok(atCrash, 'the checkpoint carries the blend');
    assert.ok(atCrash.window.total > 0, `${atCrash.window.total} outcomes learned before the checkpoint`);
    assert.notDeepEqual(atCrash.weights, [...startWeights(DEFAULT_BASELINE_WEIGHTS)], 'it learned before the checkpoint');
    assert.ok(ended.window.total > atCrash.window.total, 'and after it');

    writeFileSync(path, saved);
    const second = await buildPipeline(config(path, groupId), { logger, log });
    const resumed = blendOf(second.scorers.current()).checkpointAttachment().capture();
    assert.deepEqual(resumed, atCrash);
    // And it goes on learning from there over the records after the checkpoint.
    await runUntil(second, N - checkpointPosition(path, second.topics.interactions, saved)!);
    const again = blendOf(second.scorers.current()).checkpointAttachment().capture();
    assert.ok(again.window.total > atCrash.window.total);
    await closePipeline(second);
    await log.close();
  });
});
