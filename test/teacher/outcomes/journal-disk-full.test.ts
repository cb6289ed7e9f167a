/**
 * The side stream's journal (`src/teacher/outcomes/journal.ts`: pending cases, trajectories waiting for their
 * outcome) when the disk fills (RELIABILITY.md "Faults", issue 9), on `FaultyFs`: a failed append is
 * `TransientError` `DISK_FULL` with the ENOSPC as cause, is cut off again (so a later append never continues a
 * torn line and a reopen replays exactly the acknowledged entries), and later calls work once space is back.
 */
import assert from 'node:assert/strict';
import { mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { TransientError } from '../../../src/errors/index.ts';
import { Journal } from '../../../src/teacher/outcomes/journal.ts';
import { FaultyFs } from '../../util/faulty-fs.ts';

interface Entry {
  readonly n: number;
  readonly pad: string;
}
const entry = (n: number): Entry => ({ n, pad: 'x'.repeat(40) });

const dirs: string[] = [];
async function journalPath(): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'starstream-journal-full-'));
  dirs.push(dir);
  return join(dir, 'j.jsonl');
}
after(async () => {
  for (const d of dirs) await rm(d, { recursive: true, force: true });
});

async function replay(path: string): Promise<number[]> {
  const seen: number[] = [];
  await Journal.open<Entry>(path, (e) => seen.push(e.n));
  return seen;
}

function assertDiskFull(err: unknown, path: string): void {
  assert.ok(err instanceof TransientError, String(err));
  assert.equal(err.code, 'DISK_FULL');
  assert.equal((err.cause as NodeJS.ErrnoException).code, 'ENOSPC');
  assert.ok(err.message.includes(path), err.message);
}

describe('journal with the disk full', () => {
  it('a failed append (whole and torn lines on disk) is cut back; the next append and a reopen see only acknowledged entries', async () => {
    const path = await journalPath();
    // 70 % of a three-entry append lands: two whole lines and a torn third.
    const fs = new FaultyFs({ partial: 0.7 });
    const journal = await Journal.open<Entry>(path, () => undefined, { fs });
    await journal.append([entry(1), entry(2)]);
    fs.fill();
    const err = await journal.append([entry(3), entry(4), entry(5)]).then(() => null, (e: unknown) => e);
    assertDiskFull(err, path);
    assert.equal(fs.failures, 1);
    assert.deepEqual(await replay(path), [1, 2], 'only acknowledged entries on disk');
    fs.free();
    await journal.append([entry(6)]);
    await journal.flush();
    assert.equal(journal.entries, 3);
    assert.deepEqual(await replay(path), [1, 2, 6]);
  });

  it('when cutting back fails too, the next append cuts first', async () => {
    const path = await journalPath();
    const fs = new FaultyFs({ partial: 0.7, ops: ['appendFile', 'truncate'] });
    const journal = await Journal.open<Entry>(path, () => undefined, { fs });
    await journal.append([entry(1)]);
    fs.fill();
    assertDiskFull(await journal.append([entry(2), entry(3), entry(4)]).then(() => null, (e: unknown) => e), path);
    assert.ok((await readFile(path, 'utf8')).split('\n').length > 2, 'the failed append is still on disk');
    fs.free();
    await journal.append([entry(5)]);
    assert.deepEqual(await replay(path), [1, 5]);
  });

  it('a failed compaction leaves the old journal and no temp file; appends go on', async () => {
    const path = await journalPath();
    const fs = new FaultyFs({ ops: ['writeFile'] });
    const journal = await Journal.open<Entry>(path, () => undefined, { fs });
    await journal.append([entry(1), entry(2), entry(3)]);
    fs.fill();
    assertDiskFull(await journal.compact([entry(3)]).then(() => null, (e: unknown) => e), path);
    assert.deepEqual(await readdir(join(path, '..')), ['j.jsonl']);
    await journal.append([entry(4)]);
    assert.deepEqual(await replay(path), [1, 2, 3, 4]);
    fs.free();
    await journal.compact([entry(4)]);
    assert.deepEqual(await replay(path), [4]);
  });
});
