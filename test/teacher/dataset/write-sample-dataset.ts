/**
 * Writes a small distillation data set with the real `DatasetWriter`, for the Python reader's test
 * (`train/tests/test_teacher_dataset.py`): `node --import tsx test/teacher/dataset/write-sample-dataset.ts <dir>`.
 *
 * It writes what a real export leaves behind: rotated kept and rejected parts, a record written twice (at
 * least once delivery), and a part still open (the writer is not closed at the end, as after a crash) that no
 * reader may see. Prints a JSON summary of what a reader should find.
 */
import type { CaseOutcome, LabelledTrajectory } from '../../../src/domain/teacher.ts';
import { labelTrajectory } from '../../../src/teacher/dataset/label.ts';
import { DatasetWriter } from '../../../src/teacher/dataset/writer.ts';
import { T0, teacherCase, trajectory } from '../case-fixtures.ts';

const dir = process.argv[2];
if (!dir) throw new Error('usage: write-sample-dataset.ts <dir>');

const items = ['a', 'b', 'c', 'd', 'e'];
function record(i: number): LabelledTrajectory {
  const c = teacherCase(`u${i}`, T0 + i * 60_000, items, { reason: (['uniform', 'uncertain', 'cold-user', 'long-tail'] as const)[i % 4] });
  // The teacher's ranking rotates with i, so the observed item ('a' or an unlisted one) lands at varied ranks.
  const ranking = [...items.slice(i % 5), ...items.slice(0, i % 5)];
  const outcome: CaseOutcome =
    i % 7 === 6 ? { status: 'expired', horizonMs: 1_800_000 } : { status: 'observed', nextItemId: i % 5 === 4 ? 'zzz' : 'a', observedAtMs: c.atMs + 1_000, studentRank: i % 5 === 4 ? null : 1 };
  return labelTrajectory(trajectory(c.caseId, ranking, i % 11 === 10 ? 'failed' : 'completed'), { case: c, outcome });
}

const writer = await DatasetWriter.open({ dir, maxRecordsPerFile: 4, filter: { keep: 'topk', k: 3 } });
const records = Array.from({ length: 30 }, (_, i) => record(i));
await writer.write(records.slice(0, 20));
await writer.write([records[3]!]); // delivered twice
await writer.write(records.slice(20, 24));
await writer.close();
const closed = writer.current;
// A second run that crashes: its records stay in `.open` parts, not in the manifest.
const crashed = await DatasetWriter.open({ dir, maxRecordsPerFile: 100, filter: { keep: 'topk', k: 3 } });
await crashed.write(records.slice(24));
const listed = new Set<string>();
for (const r of records.slice(0, 24)) listed.add(r.case.caseId);
process.stdout.write(
  JSON.stringify({
    kept: closed.counts.kept,
    rejected: closed.counts.rejected,
    uniqueCases: listed.size,
    keptCaseIds: records.slice(0, 24).filter((r) => r.trajectory.status === 'completed' && r.teacherRank !== null && r.teacherRank <= 3).map((r) => r.case.caseId),
  }) + '\n',
);
