/**
 * Disk full while the teacher's dataset export writes (RELIABILITY.md "Faults", issue 9). The writer runs on
 * `FaultyFs` (test/util/faulty-fs.ts), whose disk fills at a chosen call: a write then puts part of its data
 * down and throws ENOSPC, fsync and rename throw ENOSPC, until space is freed.
 *
 * Required, checked after every failed call and at the end: no file a reader can see is corrupt (every
 * finished part parses line by line, an open part holds only whole lines, a part being written is never
 * listed, the manifest is always valid JSON and lists only complete parts whose line counts it states); the
 * error is `TransientError` `DISK_FULL` with the ENOSPC error as cause; and once space is back the export
 * goes on (the failed call retried, as the labeller's consumer redelivers it, or the writer reopened after a
 * crash) and ends with every record listed at least once, repeats only from calls that failed (at least
 * once: the Python reader skips a repeated `case.caseId`, checked with the real reader when `train/.venv`
 * exists).
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { after, describe, it } from 'node:test';
import type { LabelledTrajectory } from '../../../src/domain/teacher.ts';
import { TransientError } from '../../../src/errors/index.ts';
import { labelTrajectory } from '../../../src/teacher/dataset/label.ts';
import { DatasetWriter, MANIFEST_FILE, type Manifest } from '../../../src/teacher/dataset/writer.ts';
import { FaultyFs, type FaultyFsOptions } from '../../util/faulty-fs.ts';
import { T0, teacherCase, trajectory } from '../case-fixtures.ts';

const dirs: string[] = [];
async function tempDir(): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'starstream-disk-full-'));
  dirs.push(dir);
  return dir;
}
after(async () => {
  for (const d of dirs) await rm(d, { recursive: true, force: true });
});

const FILTER = { keep: 'top1', k: 3 } as const;
const MAX_PER_FILE = 4;
const BATCH = 3;

/** Record i: kept (the teacher ranked the observed item first) except every 5th, which is rejected. */
function record(i: number): LabelledTrajectory {
  const c = teacherCase(`u${i}`, T0 + i * 1_000, ['a', 'b', 'c', 'd'], { reason: i % 2 ? 'uncertain' : 'uniform' });
  const next = i % 5 === 4 ? 'zzz' : 'a';
  return labelTrajectory(trajectory(c.caseId, ['a', 'b', 'c', 'd']), { case: c, outcome: { status: 'observed', nextItemId: next, observedAtMs: T0 + i * 1_000 + 500, studentRank: null } });
}
const RECORDS = Array.from({ length: 22 }, (_, i) => record(i));
const BATCHES = Array.from({ length: Math.ceil(RECORDS.length / BATCH) }, (_, b) => RECORDS.slice(b * BATCH, (b + 1) * BATCH));

/** Every line of `text` (newline-terminated) as a record; a blank or broken line fails. */
function parseLines(text: string, where: string): LabelledTrajectory[] {
  if (text === '') return [];
  return text
    .slice(0, text.endsWith('\n') ? -1 : undefined)
    .split('\n')
    .map((l, n) => {
      try {
        return JSON.parse(l) as LabelledTrajectory;
      } catch {
        throw new assert.AssertionError({ message: `${where}: line ${n + 1} is not JSON: ${l.slice(0, 80)}` });
      }
    });
}

/**
 * What a reader may see now, checked: returns the case ids of the listed parts, in order. `tornOpenParts`
 * allows a torn last line in a `.open` part (a cut-back that failed too: never listed, cut at the next append
 * or open).
 */
async function checkReadable(dir: string, tornOpenParts = false): Promise<string[]> {
  const names = await readdir(dir);
  assert.deepEqual(names.filter((n) => n.endsWith('.tmp')), [], 'a temp file was left behind');
  let manifest: Manifest | null = null;
  if (names.includes(MANIFEST_FILE)) {
    const text = await readFile(join(dir, MANIFEST_FILE), 'utf8');
    assert.doesNotThrow(() => (manifest = JSON.parse(text) as Manifest), `${MANIFEST_FILE} is not JSON: ${text.slice(0, 200)}`);
  }
  const listed = new Set<string>();
  const ids: string[] = [];
  let kept = 0;
  let rejected = 0;
  for (const f of (manifest as Manifest | null)?.files ?? []) {
    assert.match(f.path, /^(kept|rejected)-\d{6}\.jsonl$/, `the manifest lists ${f.path}`);
    assert.ok(names.includes(f.path), `the manifest lists ${f.path}, which is not there`);
    const records = parseLines(await readFile(join(dir, f.path), 'utf8'), f.path);
    assert.equal(records.length, f.records, `${f.path}: the manifest says ${f.records} records`);
    if (f.split === 'kept') kept += records.length;
    else rejected += records.length;
    ids.push(...records.map((r) => r.case.caseId));
    listed.add(f.path);
  }
  if (manifest) {
    const m = manifest as Manifest;
    assert.deepEqual([m.counts.kept, m.counts.rejected], [kept, rejected], 'manifest counts = lines of the listed parts');
  }
  for (const name of names) {
    if (listed.has(name) || name === MANIFEST_FILE) continue;
    const text = await readFile(join(dir, name), 'utf8');
    if (name.endsWith('.jsonl')) {
      // A final part the manifest does not list yet (its write failed): complete all the same.
      assert.ok(text.endsWith('\n'), `${name}: an unlisted final part ends in a torn line`);
      parseLines(text, name);
    } else if (name.endsWith('.jsonl.open')) {
      const whole = tornOpenParts ? text.slice(0, text.lastIndexOf('\n') + 1) : text;
      assert.ok(whole === '' || whole.endsWith('\n'), `${name}: the open part ends in a torn line`);
      parseLines(whole, name);
    } else {
      assert.fail(`unexpected file ${name}`);
    }
  }
  return ids;
}

interface ExportRun {
  /** Calls (write or close) that failed, with how many records each carried. */
  readonly failedCalls: number;
  readonly failedRecords: number;
  readonly errors: readonly unknown[];
}

/**
 * Exports every batch and closes. A failed call is checked (error, files), tried again once while the disk is
 * still full, then space comes back and it is tried until it passes; with `crash`, the writer is dropped at the
 * first failure and a new one opened on the directory (as a restarted labeller would).
 */
async function exportAll(dir: string, fs: FaultyFs, crash = false, tornOpenParts = false): Promise<ExportRun> {
  const open = (): Promise<DatasetWriter> => DatasetWriter.open({ dir, maxRecordsPerFile: MAX_PER_FILE, filter: FILTER, fs, clock: () => T0 });
  let writer = await open();
  const errors: unknown[] = [];
  let failedCalls = 0;
  let failedRecords = 0;
  const attempt = async (call: (w: DatasetWriter) => Promise<void>, records: number): Promise<void> => {
    for (let tries = 1; ; tries++) {
      try {
        await call(writer);
        return;
      } catch (err) {
        errors.push(err);
        failedCalls++;
        failedRecords += records;
        assert.ok(err instanceof TransientError, `not a TransientError: ${String(err)}`);
        assert.equal(err.code, 'DISK_FULL');
        assert.equal((err.cause as NodeJS.ErrnoException).code, 'ENOSPC');
        assert.ok(err.message.includes(dir), `the error names the file: ${err.message}`);
        await checkReadable(dir, tornOpenParts);
        assert.ok(tries < 5, `still failing after space came back: ${String(err)}`);
        if (tries >= 2) fs.free();
        if (crash && tries === 2) writer = await open();
      }
    }
  };
  for (const batch of BATCHES) await attempt((w) => w.write(batch), batch.length);
  await attempt((w) => w.close(), 0);
  return { failedCalls, failedRecords, errors };
}

/** The end state: nothing open, every record listed, repeats only from failed calls. */
async function checkComplete(dir: string, run: ExportRun, what: string): Promise<{ lines: number; duplicates: number }> {
  const ids = await checkReadable(dir);
  assert.deepEqual((await readdir(dir)).filter((n) => n.endsWith('.open')), [], `${what}: a part was left open`);
  const unique = new Set(ids);
  assert.deepEqual([...unique].sort(), RECORDS.map((r) => r.case.caseId).sort(), `${what}: records lost`);
  const duplicates = ids.length - unique.size;
  assert.ok(duplicates <= run.failedRecords, `${what}: ${duplicates} repeats, but failed calls carried only ${run.failedRecords} records`);
  return { lines: ids.length, duplicates };
}

const PYTHON = join(process.cwd(), 'train', '.venv', 'bin', 'python');

/** Case ids as the trainer's reader (`train/starstream_train/labelled.py`) yields them, both splits. */
async function pythonReader(dir: string): Promise<string[]> {
  const code = 'import json,sys\nfrom starstream_train.labelled import iter_labelled\nprint(json.dumps([t["case"]["caseId"] for t in iter_labelled(sys.argv[1], ("kept","rejected"))]))';
  const { stdout } = await promisify(execFile)(PYTHON, ['-c', code, dir], { timeout: 60_000 });
  return JSON.parse(stdout) as string[];
}

async function scenario(options: FaultyFsOptions, crash = false): Promise<{ dir: string; fs: FaultyFs; run: ExportRun; lines: number; duplicates: number }> {
  const dir = await tempDir();
  const fs = new FaultyFs(options);
  const run = await exportAll(dir, fs, crash, (options.ops ?? []).includes('truncate'));
  const end = await checkComplete(dir, run, JSON.stringify(options));
  return { dir, fs, run, ...end };
}

describe('dataset export with the disk full', () => {
  it('mid-line: the torn append is cut off, DISK_FULL surfaces with ENOSPC as cause; retried, nothing lost or repeated', async (t) => {
    // The 5th append to an open part (the third batch's, three lines into kept-000002) writes half, then ENOSPC.
    const r = await scenario({ ops: ['appendFile'], path: /\.jsonl\.open$/, failAt: 5 });
    assert.ok(r.fs.failures >= 2, `${r.fs.failures} ENOSPC injected`);
    assert.equal(r.duplicates, 0, 'a cut-back append leaves nothing to repeat');
    const err = r.run.errors[0] as TransientError;
    assert.equal(err.retriable, true);
    assert.match(err.message, /append to .*kept-000002\.jsonl\.open: no space left \(ENOSPC\)/);
    t.diagnostic(`${r.run.failedCalls} failed calls, ${r.lines} lines for ${RECORDS.length} records, ${r.duplicates} repeats`);
  });

  it('mid-line, and cutting the torn line back fails too: the next append cuts it first', async (t) => {
    const r = await scenario({ ops: ['appendFile', 'truncate'], path: /\.jsonl\.open$/, failAt: 5 });
    assert.equal(r.duplicates, 0);
    t.diagnostic(`${r.run.failedCalls} failed calls, ${r.duplicates} repeats`);
  });

  it('at rotation (renaming the full part fails): the part stays open and unlisted, the next call renames it', async (t) => {
    const r = await scenario({ ops: ['rename'], path: /\.jsonl\.open$/, failAt: 1 });
    // The failed call's records were in the part before its rename failed: written again, they repeat.
    assert.ok(r.duplicates > 0 && r.duplicates <= BATCH, `${r.duplicates} repeats`);
    if (existsSync(PYTHON)) {
      const read = await pythonReader(r.dir);
      assert.equal(read.length, RECORDS.length, 'the trainer reads every record once');
      assert.deepEqual(new Set(read), new Set(RECORDS.map((x) => x.case.caseId)));
      t.diagnostic(`python reader: ${read.length} records from ${r.lines} lines`);
    } else {
      t.diagnostic(`python reader not checked: ${PYTHON} is absent (bash train/install.sh)`);
    }
    t.diagnostic(`${r.run.failedCalls} failed calls, ${r.lines} lines for ${RECORDS.length} records, ${r.duplicates} repeats`);
  });

  it('at the manifest rename: the old manifest stands, no temp file is left, the next call writes it', async (t) => {
    const dir = await tempDir();
    const fs = new FaultyFs({ ops: ['rename'], path: /manifest\.json\.tmp$/, failAt: 1 });
    const writer = await DatasetWriter.open({ dir, maxRecordsPerFile: MAX_PER_FILE, filter: FILTER, fs });
    await writer.write(BATCHES[0]!);
    const err = await writer.write(BATCHES[1]!).then(() => null, (e: unknown) => e);
    assert.ok(err instanceof TransientError && err.code === 'DISK_FULL', String(err));
    assert.match(err.message, /write .*manifest\.json: no space left/);
    assert.equal((await readdir(dir)).includes(MANIFEST_FILE), false, 'no manifest yet: the first one failed');
    assert.deepEqual(await checkReadable(dir), []);
    assert.ok((await readdir(dir)).includes('kept-000001.jsonl'), 'the part is final, not yet listed');
    fs.free();
    // Retried, as the consumer redelivers it: the manifest is caught up first.
    await writer.write(BATCHES[1]!);
    const listed = (JSON.parse(await readFile(join(dir, MANIFEST_FILE), 'utf8')) as Manifest).files.map((f) => f.path);
    assert.deepEqual(listed, ['kept-000001.jsonl'], 'caught up by the next call');
    for (const b of BATCHES.slice(2)) await writer.write(b);
    await writer.close();
    const end = await checkComplete(dir, { failedCalls: 1, failedRecords: BATCHES[1]!.length, errors: [err] }, 'manifest rename');
    t.diagnostic(`${end.lines} lines for ${RECORDS.length} records, ${end.duplicates} repeats (the record of the failed call that was in before its rotation)`);
  });

  it('a crash while the manifest is behind: a new writer takes the unlisted part up again', async () => {
    const r = await scenario({ ops: ['rename'], path: /manifest\.json\.tmp$/, failAt: 2 }, true);
    assert.ok(r.run.failedCalls >= 1);
  });

  for (const crash of [false, true]) {
    it(`at every injection point in turn (each write, fsync, rename), ${crash ? 'the writer restarted after the failure' : 'the failed call retried'}`, async (t) => {
      const clean = await scenario({});
      const points = clean.fs.calls;
      assert.ok(points > 20, `${points} mutating calls in a clean export`);
      let failedCalls = 0;
      let duplicates = 0;
      let worst = 0;
      for (let k = 1; k <= points; k++) {
        const r = await scenario({ failAt: k }, crash);
        assert.ok(r.run.failedCalls >= 2, `point ${k}: ${r.run.failedCalls} failed calls`);
        failedCalls += r.run.failedCalls;
        duplicates += r.duplicates;
        worst = Math.max(worst, r.duplicates);
      }
      t.diagnostic(`${points} injection points: ${failedCalls} failed calls, each checked readable; ${duplicates} repeated records in all (at most ${worst} in one export of ${RECORDS.length}), none lost`);
    });
  }
});
