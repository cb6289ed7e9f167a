/**
 * The outcome worker on the embedded log: what it reads from two partitions of each topic decides what the
 * join may forget. A case read late from a teacher-cases partition behind the others must still find the
 * interactions after it (the pre-fix worker took the newest case seen on any partition as the case
 * watermark, pruned them, and the case came back unjoinable).
 */
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { NO_MALFORMED, produceInteractions } from '../../../src/cli/produce.ts';
import { loadConfig } from '../../../src/config/load.ts';
import type { Interaction } from '../../../src/domain/events.ts';
import { createCodecs } from '../../../src/eventlog/codec/avro.ts';
import { createFraming } from '../../../src/eventlog/codec/framing.ts';
import { createEmbeddedEventLog } from '../../../src/eventlog/embedded/log.ts';
import { partitionForKey } from '../../../src/eventlog/embedded/murmur2.ts';
import { topicNames } from '../../../src/eventlog/topics.ts';
import { teacherCaseRecord } from '../../../src/pipeline/outputs.ts';
import { DurableOutcomeJoin } from '../../../src/teacher/outcomes/durable.ts';
import type { LabelledCase } from '../../../src/teacher/outcomes/join.ts';
import { OutcomeWorker } from '../../../src/teacher/outcomes/worker.ts';
import { silentLogger } from '../../../src/logging/logger.ts';
import { eventually, uniqueName } from '../../helpers.ts';
import { T0, teacherCase } from '../case-fixtures.ts';

const MIN = 60_000;
const dirs: string[] = [];
after(async () => {
  for (const d of dirs) await rm(d, { recursive: true, force: true });
});

/** The first user id `u<n>` whose key lands in `partition` of 2. */
function userIn(partition: number): string {
  for (let n = 0; ; n++) if (partitionForKey(Buffer.from(`u${n}`), 2) === partition) return `u${n}`;
}

const interaction = (userId: string, itemId: string, atMs: number): Interaction => ({ eventId: `${userId}-${atMs}`, userId, itemId, type: 'click', value: null, timestampMs: atMs, context: {} });

describe('OutcomeWorker', () => {
  it('joins a case read late from a slow teacher-cases partition: the buffer forgets only behind every cases partition', async (t) => {
    const dataDir = await mkdtemp(join(tmpdir(), 'starstream-worker-'));
    dirs.push(dataDir);
    const config = loadConfig({ overrides: { eventLog: { topics: { partitions: 2 } } } });
    const log = createEmbeddedEventLog(config.eventLog, silentLogger());
    t.after(() => log.close());
    const topics = topicNames(config);
    await log.ensureTopics([topics.interactions, topics.teacherCases].map((name) => ({ name, partitions: 2, replicationFactor: 1 })));
    const codecs = createCodecs();
    const framing = createFraming(config.eventLog);
    const labelled: LabelledCase[] = [];
    const unjoinable: string[] = [];
    const outcomes = await DurableOutcomeJoin.open({
      horizonMs: 30 * MIN,
      allowedLatenessMs: MIN,
      maxBufferedPerUser: 100,
      dataDir,
      compactAfterEntries: 1_000,
      sink: async (r) => {
        labelled.push(...r.labelled);
        unjoinable.push(...r.unjoinable.map((c) => c.caseId));
      },
    });
    const worker = new OutcomeWorker({ log, join: outcomes, codecs, framing, topics, groupId: uniqueName('outcomes'), maxBatchRecords: 100, logger: silentLogger() });
    worker.start();
    t.after(() => worker.stop());

    const fast = userIn(0);
    const slow = userIn(1);
    const producer = log.producer();
    t.after(() => producer.close());
    // The fast partition's case is read first, 90 minutes after the slow one's.
    await producer.send([await teacherCaseRecord(teacherCase(fast, T0 + 90 * MIN, ['x']), topics.teacherCases, codecs, framing)]);
    await eventually(() => worker.casesRead >= 1, 60_000);
    // Then both interactions partitions move far past the slow user's case; its next interaction is at T0 + 1 min.
    const events = [interaction(slow, 'next', T0 + MIN), interaction(slow, 'later', T0 + 100 * MIN), interaction(fast, 'x', T0 + 100 * MIN)];
    await produceInteractions(log, topics.interactions, events, codecs, framing, NO_MALFORMED);
    await eventually(() => worker.interactionsRead >= events.length, 60_000);
    const slowCase = teacherCase(slow, T0, ['a', 'next']);
    await producer.send([await teacherCaseRecord(slowCase, topics.teacherCases, codecs, framing)]);
    await eventually(() => worker.casesRead >= 2, 60_000);
    await worker.stop();

    assert.deepEqual(unjoinable, []);
    const outcome = labelled.find((l) => l.case.caseId === slowCase.caseId)?.outcome;
    assert.deepEqual(outcome, { status: 'observed', nextItemId: 'next', observedAtMs: T0 + MIN, studentRank: 2 });
    // Both cases partitions have been read now: the case watermark is the slower one's.
    assert.equal(outcomes.join.caseWatermarkMs, T0);
  });
});
