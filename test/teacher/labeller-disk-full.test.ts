/**
 * Disk full under the whole labelling side stream (RELIABILITY.md "Faults", issue 9): the `Labeller` (outcome
 * join → pairing with trajectories → dataset export, each with its journal) on the embedded event log, with
 * every file it writes on `FaultyFs` (test/util/faulty-fs.ts). Mid-run the disk fills for a while: appends,
 * fsyncs, renames and the manifest fail with ENOSPC, the consumers' batches fail with `DISK_FULL` and come
 * again. Once space is back the export must go on by itself and end with every labelled case in the data set
 * at least once (repeats only from batches that failed: the reader skips a repeated `case.caseId`), nothing
 * left pending or dropped, and every file readable. The writer alone, at every injection point, is
 * `dataset/disk-full.test.ts`.
 */
import assert from 'node:assert/strict';
import { mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { NO_MALFORMED, produceInteractions } from '../../src/cli/produce.ts';
import { loadConfig } from '../../src/config/load.ts';
import type { Interaction } from '../../src/domain/events.ts';
import type { LabelledTrajectory } from '../../src/domain/teacher.ts';
import { createCodecs } from '../../src/eventlog/codec/avro.ts';
import { createFraming } from '../../src/eventlog/codec/framing.ts';
import { createEmbeddedEventLog } from '../../src/eventlog/embedded/log.ts';
import { topicNames } from '../../src/eventlog/topics.ts';
import { teacherCaseRecord } from '../../src/pipeline/outputs.ts';
import { MANIFEST_FILE, type Manifest } from '../../src/teacher/dataset/writer.ts';
import { Labeller } from '../../src/teacher/labeller.ts';
import { trajectoryRecord } from '../../src/teacher/trajectories/codec.ts';
import { eventually, uniqueName } from '../helpers.ts';
import { capturingLogger, redeliveries } from '../pipeline/outage-scenario.ts';
import { FaultyFs } from '../util/faulty-fs.ts';
import { T0, teacherCase, trajectory } from './case-fixtures.ts';

const CASES = 240;
const CHUNK = 20;
const CHUNK_MS = 100;
const MAX_BATCH = 25;
const FULL_MS = 1_500;

const dirs: string[] = [];
after(async () => {
  for (const d of dirs) await rm(d, { recursive: true, force: true });
});

/** Which files are on the disk that fills: all (journals too), or only the export's (the data set on its own volume). */
const DISKS = [
  { name: 'every file on the full disk', path: undefined },
  { name: 'only the data set directory on the full disk', path: /[/\\]dataset[/\\]/ },
] as const;

describe('labelling side stream with the disk full for a while', () => {
  for (const disk of DISKS) it(`goes on by itself after ${FULL_MS} ms of ENOSPC and exports every labelled case at least once (${disk.name})`, { timeout: 600_000 }, async (t) => {
    const dataDir = await mkdtemp(join(tmpdir(), 'starstream-labeller-full-'));
    dirs.push(dataDir);
    const config = loadConfig({
      overrides: {
        eventLog: { topics: { partitions: 3 } },
        sampling: {
          outcomes: { horizonMs: 86_400_000, allowedLatenessMs: 3_600_000, maxBufferedPerUser: 100, dataDir, compactAfterEntries: 200 },
          dataset: { dir: join(dataDir, 'dataset'), keep: 'topk', keepTopK: 3, maxRecordsPerFile: 16 },
        },
      },
    });
    const captured = capturingLogger();
    const log = createEmbeddedEventLog(config.eventLog, captured.logger);
    t.after(() => log.close());
    const topics = topicNames(config);
    const codecs = createCodecs();
    const framing = createFraming(config.eventLog);
    const fs = new FaultyFs(disk.path ? { path: disk.path } : {});
    const labeller = await Labeller.open(config.sampling, { log, codecs, framing, topics, groupId: uniqueName('labeller'), maxBatchRecords: MAX_BATCH, logger: captured.logger, fs });
    t.after(() => labeller.stop());
    let failedWith: unknown = null;
    labeller.done().catch((err: unknown) => (failedWith = err));
    labeller.start();

    // Per case: the case, its user's next interaction (item a: the teacher's first), the teacher's trajectory.
    const cases = Array.from({ length: CASES }, (_, i) => teacherCase(`u${i % 60}`, T0 + i * 60_000, ['a', 'b', 'c', 'd'], { reason: i % 2 ? 'uncertain' : 'uniform' }));
    const producer = log.producer();
    t.after(() => producer.close());
    const started = Date.now();
    let fullAt = 0;
    let freedAt = 0;
    // Space comes back only once the full disk has failed a batch: after FULL_MS alone, a labeller slowed by a
    // loaded machine might not have tried to write yet, and the test would check nothing.
    const failedForDisk = (): boolean => fs.failures > 0 && Object.keys(redeliveries(captured.lines())).length > 0;
    for (let i = 0; i < CASES; i += CHUNK) {
      const chunk = cases.slice(i, i + CHUNK);
      await producer.send(await Promise.all(chunk.map((c) => teacherCaseRecord(c, topics.teacherCases, codecs, framing))));
      const next: Interaction[] = chunk.map((c) => ({ eventId: `next-${c.caseId}`, userId: c.user.userId, itemId: 'a', type: 'click', value: null, timestampMs: c.atMs + 1_000, context: {} }));
      await produceInteractions(log, topics.interactions, next, codecs, framing, NO_MALFORMED);
      await producer.send(chunk.map((c) => trajectoryRecord(trajectory(c.caseId, ['a', 'b', 'c', 'd']), c.user.userId, topics.trajectories)));
      // The disk fills a third of the way in and stays full for FULL_MS while input keeps coming.
      if (!fullAt && i >= CASES / 3) {
        fs.fill();
        fullAt = Date.now();
      }
      if (fullAt && !freedAt && Date.now() - fullAt >= FULL_MS && failedForDisk()) {
        fs.free();
        freedAt = Date.now();
      }
      const dueMs = started + (i / CHUNK + 1) * CHUNK_MS - Date.now();
      if (dueMs > 0) await new Promise((r) => setTimeout(r, dueMs));
    }
    if (!freedAt) {
      await eventually(() => Date.now() - fullAt >= FULL_MS && failedForDisk(), 300_000, 50);
      fs.free();
      freedAt = Date.now();
    }
    const failuresWhileFull = fs.failures;

    // Everything read, paired and handed to the export; nothing waits for a half that already came.
    await eventually(
      () => failedWith === null && labeller.trajectoriesRead >= CASES && labeller.outcomes.interactionsRead >= CASES && labeller.outcomes.casesRead >= CASES && labeller.pairing.pending.trajectories + labeller.pairing.pending.outcomes === 0,
      // A guard against a labeller that never recovers, not a recovery-time bound (that is reported below).
      300_000,
      50,
    ).catch((err: unknown) => {
      throw new Error(
        `${String(err)}: read ${labeller.trajectoriesRead} trajectories, ${labeller.outcomes.interactionsRead} interactions, ${labeller.outcomes.casesRead} cases; pending ${JSON.stringify(labeller.pairing.pending)}; failed ${String(failedWith)}`,
      );
    });
    const recoveredIn = Date.now() - freedAt;
    await labeller.stop();
    assert.equal(failedWith, null, `the labeller stopped: ${String(failedWith)}`);

    // The data set: every file readable, everything listed, each case at least once.
    const dir = config.sampling.dataset.dir;
    const names = await readdir(dir);
    assert.deepEqual(names.filter((n) => !/^(kept|rejected)-\d{6}\.jsonl$/.test(n) && n !== MANIFEST_FILE), [], 'only final parts and the manifest are left');
    const manifest = JSON.parse(await readFile(join(dir, MANIFEST_FILE), 'utf8')) as Manifest;
    assert.deepEqual(manifest.files.map((f) => f.path).sort(), names.filter((n) => n !== MANIFEST_FILE).sort(), 'every part is listed');
    const ids: string[] = [];
    for (const f of manifest.files) {
      const text = await readFile(join(dir, f.path), 'utf8');
      assert.ok(text.endsWith('\n'), `${f.path} ends in a torn line`);
      const records = text.slice(0, -1).split('\n').map((l) => JSON.parse(l) as LabelledTrajectory);
      assert.equal(records.length, f.records, `${f.path}: lines vs manifest`);
      ids.push(...records.map((r) => r.case.caseId));
    }
    const unique = new Set(ids);
    const codes = redeliveries(captured.lines());
    const failedBatches = Object.values(codes).reduce((a, b) => a + b, 0);
    const duplicates = ids.length - unique.size;
    t.diagnostic(
      `disk full ${freedAt - fullAt} ms: ${failuresWhileFull} ENOSPC (${fs.failed.filter((f) => /[/\\]dataset[/\\]/.test(f)).length} in the export, the rest in journals), ` +
        `${failedBatches} failed batch attempts ${JSON.stringify(codes)}; ${ids.length} lines for ${CASES} cases, ${duplicates} repeats; ` +
        `all paired ${recoveredIn} ms after space came back; dropped ${labeller.dropped}`,
    );
    assert.ok(failuresWhileFull > 0 && failedBatches > 0, 'the full disk failed batches');
    assert.deepEqual(Object.keys(codes), ['DISK_FULL'], 'batches failed only for the disk');
    assert.equal(labeller.dropped, 0, 'no case dropped');
    assert.deepEqual([...unique].sort(), cases.map((c) => c.caseId).sort(), 'every labelled case is in the data set');
    assert.equal(manifest.counts.kept, CASES + duplicates, 'all kept (the teacher ranked the observed item first)');
    assert.ok(duplicates <= failedBatches * MAX_BATCH, `${duplicates} repeats from ${failedBatches} failed batches of at most ${MAX_BATCH}`);
  });
});
