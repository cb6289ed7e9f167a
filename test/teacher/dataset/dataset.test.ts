import assert from 'node:assert/strict';
import { appendFile, mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import type { CaseOutcome, LabelledTrajectory } from '../../../src/domain/teacher.ts';
import { FatalError } from '../../../src/errors/index.ts';
import { judge, labelTrajectory } from '../../../src/teacher/dataset/label.ts';
import { TrajectoryPairing } from '../../../src/teacher/dataset/pairing.ts';
import { DATASET_SCHEMA_VERSION, DatasetWriter, type Manifest } from '../../../src/teacher/dataset/writer.ts';
import { T0, teacherCase, trajectory } from '../case-fixtures.ts';

const dirs: string[] = [];
async function tempDir(): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'starstream-dataset-'));
  dirs.push(dir);
  return dir;
}
after(async () => {
  for (const d of dirs) await rm(d, { recursive: true, force: true });
});

const observed = (nextItemId: string, studentRank: number | null = null): CaseOutcome => ({ status: 'observed', nextItemId, observedAtMs: T0 + 1_000, studentRank });
const expired: CaseOutcome = { status: 'expired', horizonMs: 1_800_000 };

/** A labelled record for user `i` whose teacher ranked the observed item at `rank` (null = not at all). */
function record(i: number, rank: number | null, outcome?: CaseOutcome, status: 'completed' | 'failed' = 'completed'): LabelledTrajectory {
  const c = teacherCase(`u${i}`, T0 + i * 1_000, ['a', 'b', 'c', 'd'], { reason: i % 2 ? 'uncertain' : 'uniform' });
  const ranking = ['a', 'b', 'c', 'd'];
  const next = rank === null ? 'zzz' : ranking[rank - 1]!;
  return labelTrajectory(trajectory(c.caseId, ranking, status), { case: c, outcome: outcome ?? observed(next) });
}

async function lines(dir: string, file: string): Promise<LabelledTrajectory[]> {
  return (await readFile(join(dir, file), 'utf8')).trim().split('\n').map((l) => JSON.parse(l) as LabelledTrajectory);
}

describe('labelTrajectory and the keep filter', () => {
  it('teacherRank is the observed item\'s 1-based rank in the teacher\'s ranking; null when absent or expired', () => {
    assert.equal(record(1, 1).teacherRank, 1);
    assert.equal(record(1, 3).teacherRank, 3);
    assert.equal(record(1, null).teacherRank, null);
    assert.equal(record(1, 1, expired).teacherRank, null);
    assert.equal(record(1, 1, undefined, 'failed').teacherRank, null);
    const c = teacherCase('u1', T0);
    assert.throws(() => labelTrajectory(trajectory('case-other', ['a']), { case: c, outcome: expired }));
  });

  it('top1 / topk / all', () => {
    const top1 = { keep: 'top1', k: 3 } as const;
    const topk = { keep: 'topk', k: 3 } as const;
    const all = { keep: 'all', k: 3 } as const;
    assert.deepEqual(judge(record(1, 1), top1), { kept: true });
    assert.deepEqual(judge(record(1, 2), top1), { kept: false, why: 'missed' });
    assert.deepEqual(judge(record(1, 3), topk), { kept: true });
    assert.deepEqual(judge(record(1, 4), topk), { kept: false, why: 'missed' });
    assert.deepEqual(judge(record(1, null, expired), topk), { kept: false, why: 'expired' });
    assert.deepEqual(judge(record(1, null, expired), all), { kept: true });
    assert.deepEqual(judge(record(1, 1, undefined, 'failed'), all), { kept: false, why: 'failed' });
  });
});

describe('DatasetWriter', () => {
  const filter = { keep: 'top1', k: 3 } as const;

  it('rotates files, lists only closed parts in the manifest, and keeps rejected runs in their own files', async () => {
    const dir = await tempDir();
    const writer = await DatasetWriter.open({ dir, maxRecordsPerFile: 3, filter, clock: () => T0 });
    // 7 kept (rank 1), 4 rejected: 2 misses, 1 expired, 1 failed.
    const recs = [...Array.from({ length: 7 }, (_, i) => record(i, 1)), record(7, 2), record(8, null), record(9, null, expired), record(10, 1, undefined, 'failed')];
    await writer.write(recs.slice(0, 5));
    assert.deepEqual(writer.current.files.map((f) => f.path), ['kept-000001.jsonl'], 'the open part is not listed');
    await writer.write(recs.slice(5));
    await writer.close();
    await writer.close();

    const names = (await readdir(dir)).sort();
    assert.deepEqual(names, ['kept-000001.jsonl', 'kept-000002.jsonl', 'kept-000003.jsonl', 'manifest.json', 'rejected-000001.jsonl', 'rejected-000002.jsonl']);
    const manifest = JSON.parse(await readFile(join(dir, 'manifest.json'), 'utf8')) as Manifest;
    assert.equal(manifest.schemaVersion, DATASET_SCHEMA_VERSION);
    assert.deepEqual(manifest.filter, filter);
    assert.deepEqual(manifest.counts.kept, 7);
    assert.deepEqual(manifest.counts.rejected, 4);
    assert.deepEqual(manifest.counts.rejectedBy, { failed: 1, expired: 1, missed: 2 });
    assert.deepEqual(manifest.counts.outcomes, { observed: 10, expired: 1 });
    assert.deepEqual(manifest.counts.bySamplingReason, { uniform: 6, uncertain: 5 });
    assert.deepEqual(manifest.teacherModels, { 'scripted/stand-in': 11 });
    assert.deepEqual(manifest.timeRange, { fromMs: T0, toMs: T0 + 10_000 });
    assert.deepEqual(manifest.files.map((f) => [f.path, f.records]), [
      ['kept-000001.jsonl', 3],
      ['kept-000002.jsonl', 3],
      ['rejected-000001.jsonl', 3],
      ['kept-000003.jsonl', 1],
      ['rejected-000002.jsonl', 1],
    ]);
    const kept = [...(await lines(dir, 'kept-000001.jsonl')), ...(await lines(dir, 'kept-000002.jsonl')), ...(await lines(dir, 'kept-000003.jsonl'))];
    assert.deepEqual(kept.map((r) => r.case.caseId), recs.slice(0, 7).map((r) => r.case.caseId));
    assert.deepEqual(kept[0], JSON.parse(JSON.stringify(recs[0])), 'lines are the LabelledTrajectory as it was');
  });

  it('after a crash, the open part is taken up again (torn tail cut) and nothing listed is ever partial', async () => {
    const dir = await tempDir();
    const w1 = await DatasetWriter.open({ dir, maxRecordsPerFile: 10, filter });
    await w1.write([record(1, 1), record(2, 1)]);
    // Crash: no close(); a torn line at the end of the open part.
    await appendFile(join(dir, 'kept-000001.jsonl.open'), '{"case":{"caseId":"to');
    let torn = 0;
    const w2 = await DatasetWriter.open({ dir, maxRecordsPerFile: 10, filter, onTornTail: (_f, n) => (torn = n) });
    assert.ok(torn > 0);
    await w2.write([record(3, 1)]);
    await w2.close();
    assert.deepEqual((await lines(dir, 'kept-000001.jsonl')).map((r) => r.case.user.userId), ['u1', 'u2', 'u3']);
    assert.equal(w2.current.counts.kept, 3);
    assert.equal((await readdir(dir)).some((n) => n.endsWith('.open') || n.endsWith('.tmp')), false);
  });

  it('refuses to append with another filter or another schema version', async () => {
    const dir = await tempDir();
    const w = await DatasetWriter.open({ dir, maxRecordsPerFile: 10, filter });
    await w.write([record(1, 1)]);
    await w.close();
    await assert.rejects(DatasetWriter.open({ dir, maxRecordsPerFile: 10, filter: { keep: 'topk', k: 3 } }), (e: unknown) => e instanceof FatalError && e.code === 'DATASET_FILTER');
  });
});

describe('TrajectoryPairing', () => {
  it('pairs a trajectory with its outcome in either order, and survives a restart while waiting', async () => {
    const dir = await tempDir();
    const out: LabelledTrajectory[] = [];
    const options = { dataDir: dir, compactAfterEntries: 100, maxPending: 100, sink: async (r: LabelledTrajectory[]) => void out.push(...r) };
    const c1 = teacherCase('u1', T0, ['a', 'b']);
    const c2 = teacherCase('u2', T0, ['a', 'b']);
    const p1 = await TrajectoryPairing.open(options);
    await p1.addTrajectories([trajectory(c1.caseId, ['b', 'a'])]);
    await p1.addOutcomes({ labelled: [{ case: c2, outcome: observed('a', 1) }], unjoinable: [] });
    assert.equal(out.length, 0);
    await p1.close();

    const p2 = await TrajectoryPairing.open(options);
    assert.deepEqual(p2.pending, { trajectories: 1, outcomes: 1 });
    await p2.addOutcomes({ labelled: [{ case: c1, outcome: observed('b', 2) }], unjoinable: [] });
    await p2.addTrajectories([trajectory(c2.caseId, ['b', 'a'])]);
    assert.deepEqual(out.map((r) => [r.case.caseId, r.outcome.status, r.teacherRank]), [
      [c1.caseId, 'observed', 1],
      [c2.caseId, 'observed', 2],
    ]);
    await p2.close();
    assert.deepEqual((await TrajectoryPairing.open(options)).pending, { trajectories: 0, outcomes: 0 });
  });

  it('drops the trajectory of an unjoinable case, and the oldest beyond maxPending, counted', async () => {
    const dir = await tempDir();
    const dropped: string[] = [];
    const p = await TrajectoryPairing.open({ dataDir: dir, compactAfterEntries: 100, maxPending: 1, sink: async () => {}, onDropped: (why, id) => void dropped.push(`${why}:${id}`) });
    const c1 = teacherCase('u1', T0);
    await p.addTrajectories([trajectory(c1.caseId, ['a'])]);
    await p.addOutcomes({ labelled: [], unjoinable: [c1] });
    await p.addTrajectories([trajectory('case-x', ['a']), trajectory('case-y', ['a'])]);
    assert.deepEqual(dropped, [`unjoinable:${c1.caseId}`, 'overflow:case-x']);
    assert.deepEqual(p.pending, { trajectories: 1, outcomes: 0 });
  });
});
