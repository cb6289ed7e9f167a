import assert from 'node:assert/strict';
import { appendFile, mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { FatalError } from '../../../src/errors/index.ts';
import { DurableOutcomeJoin, OUTCOME_JOURNAL_FILE } from '../../../src/teacher/outcomes/durable.ts';
import { OutcomeJoin, type JoinResult, type LabelledCase } from '../../../src/teacher/outcomes/join.ts';
import { T0, teacherCase } from '../case-fixtures.ts';

const MIN = 60_000;
const OPTIONS = { horizonMs: 30 * MIN, allowedLatenessMs: MIN, maxBufferedPerUser: 4 };

let seq = 0;
const event = (userId: string, itemId: string, timestampMs: number) => ({ eventId: `x${seq++}`, userId, itemId, timestampMs });

const dirs: string[] = [];
async function tempDir(): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'starstream-outcomes-'));
  dirs.push(dir);
  return dir;
}
after(async () => {
  for (const d of dirs) await rm(d, { recursive: true, force: true });
});

describe('OutcomeJoin', () => {
  it('hit: the next interaction within the horizon labels the case observed, with its rank in the student list', () => {
    const join = new OutcomeJoin(OPTIONS);
    assert.deepEqual(join.addCase(teacherCase('u1', T0, ['a', 'b', 'c'])), { labelled: [], unjoinable: [] });
    const r = join.observe(event('u1', 'b', T0 + 5 * MIN));
    assert.equal(r.labelled.length, 1);
    assert.deepEqual(r.labelled[0]!.outcome, { status: 'observed', nextItemId: 'b', observedAtMs: T0 + 5 * MIN, studentRank: 2 });
    assert.equal(join.pendingCount, 0);
  });

  it('miss: an item outside the list is observed with studentRank null; other users and earlier events do not label', () => {
    const join = new OutcomeJoin(OPTIONS);
    join.addCase(teacherCase('u1', T0, ['a', 'b']));
    assert.equal(join.observe(event('u2', 'a', T0 + MIN)).labelled.length, 0, 'another user');
    assert.equal(join.observe(event('u1', 'a', T0)).labelled.length, 0, 'the same instant is history, not next');
    assert.equal(join.observe(event('u1', 'a', T0 - MIN)).labelled.length, 0, 'before the case');
    const r = join.observe(event('u1', 'zzz', T0 + 2 * MIN));
    assert.deepEqual(r.labelled[0]!.outcome, { status: 'observed', nextItemId: 'zzz', observedAtMs: T0 + 2 * MIN, studentRank: null });
  });

  it('expired: the next interaction after the horizon, or the watermark passing horizon + lateness first', () => {
    const join = new OutcomeJoin(OPTIONS);
    join.addCase(teacherCase('u1', T0));
    const late = join.observe(event('u1', 'a', T0 + 31 * MIN));
    assert.deepEqual(late.labelled[0]!.outcome, { status: 'expired', horizonMs: 30 * MIN });

    join.addCase(teacherCase('u2', T0));
    assert.equal(join.advance(T0 + 31 * MIN).labelled.length, 0, 'within lateness');
    const due = join.advance(T0 + 31 * MIN + 1);
    assert.deepEqual(due.labelled.map((l) => [l.case.user.userId, l.outcome.status]), [['u2', 'expired']]);
  });

  it('a case that arrives after the interaction that labels it finds it in the buffer', () => {
    const join = new OutcomeJoin(OPTIONS);
    join.observe(event('u1', 'h', T0));
    join.observe(event('u1', 'c', T0 + MIN));
    join.observe(event('u1', 'd', T0 + 2 * MIN));
    const r = join.addCase(teacherCase('u1', T0, ['a', 'b', 'c']));
    assert.deepEqual(r.labelled[0]!.outcome, { status: 'observed', nextItemId: 'c', observedAtMs: T0 + MIN, studentRank: 3 });
  });

  it('a late case whose next interaction may have been forgotten is unjoinable, not guessed', () => {
    const join = new OutcomeJoin(OPTIONS);
    for (let i = 1; i <= 6; i++) join.observe(event('u1', `i${i}`, T0 + i * 1_000)); // buffer holds 4: i1, i2 forgotten
    const r = join.addCase(teacherCase('u1', T0));
    assert.equal(r.labelled.length, 0);
    assert.equal(r.unjoinable.length, 1);
    // A case after everything forgotten is still exact.
    const ok = join.addCase(teacherCase('u1', T0 + 2_500));
    assert.equal((ok.labelled[0]!.outcome as { nextItemId: string }).nextItemId, 'i3');
  });

  it('forgets buffered interactions only behind the case watermark the feeder gives, not the newest case seen', () => {
    const join = new OutcomeJoin(OPTIONS);
    join.observe(event('u1', 'next', T0 + MIN));
    join.observe(event('u2', 'x', T0 + 100 * MIN));
    join.addCase(teacherCase('u2', T0 + 90 * MIN, ['x']));
    // Interactions are read far ahead, but a cases partition is still at T0: nothing the cases need is forgotten.
    join.advance(T0 + 100 * MIN, T0);
    const r = join.addCase(teacherCase('u1', T0, ['next']));
    assert.deepEqual(r.labelled[0]!.outcome, { status: 'observed', nextItemId: 'next', observedAtMs: T0 + MIN, studentRank: 1 });
    // Once every cases partition is past T0 + 90 min, what is older than horizon + lateness behind it goes.
    join.advance(T0 + 100 * MIN, T0 + 90 * MIN);
    assert.equal(join.addCase(teacherCase('u1', T0 + MIN / 2)).unjoinable.length, 1);
    assert.equal(join.caseWatermarkMs, T0 + 90 * MIN);
  });

  it('a re-delivered case or interaction changes nothing', () => {
    const join = new OutcomeJoin(OPTIONS);
    const c = teacherCase('u1', T0);
    join.addCase(c);
    const e = event('u1', 'a', T0 + MIN);
    assert.equal(join.observe(e).labelled.length, 1);
    assert.equal(join.observe(e).labelled.length, 0);
    assert.deepEqual(join.addCase(c), { labelled: [], unjoinable: [] });
  });

  it('labels only from the future interaction: the case object is the one that was added, unchanged', () => {
    const join = new OutcomeJoin(OPTIONS);
    const c = teacherCase('u1', T0);
    const frozen = structuredClone(c);
    join.addCase(c);
    const [labelled] = join.observe(event('u1', 'b', T0 + MIN)).labelled;
    assert.equal(labelled!.case, c);
    assert.deepEqual(c, frozen);
  });
});

describe('DurableOutcomeJoin (journal)', () => {
  const open = async (dataDir: string, sink: LabelledCase[] = [], extra: { compactAfterEntries?: number; onTornTail?: (n: number) => void } = {}) =>
    DurableOutcomeJoin.open({
      ...OPTIONS,
      dataDir,
      compactAfterEntries: extra.compactAfterEntries ?? 1_000,
      sink: async (r: JoinResult) => void sink.push(...r.labelled),
      ...(extra.onTornTail ? { onTornTail: extra.onTornTail } : {}),
    });

  it('restart: pending cases and buffered interactions survive; the restarted join labels them', async () => {
    const dir = await tempDir();
    const first = await open(dir);
    await first.addCases([teacherCase('u1', T0, ['a', 'b']), teacherCase('u2', T0)]);
    await first.observe([event('u3', 'c', T0 + 3 * MIN)]);
    await first.advance(T0 + 3 * MIN);
    await first.close();
    // The process dies here; a new one opens the same directory.
    const sink: LabelledCase[] = [];
    const second = await open(dir, sink);
    assert.equal(second.join.pendingCount, 2);
    await second.observe([event('u1', 'b', T0 + 4 * MIN)]);
    assert.deepEqual(sink.map((l) => [l.case.user.userId, l.outcome]), [['u1', { status: 'observed', nextItemId: 'b', observedAtMs: T0 + 4 * MIN, studentRank: 2 }]]);
    // A case arriving after the restart is joined with an interaction buffered before it.
    await second.addCases([teacherCase('u3', T0 + MIN, ['c'])]);
    assert.deepEqual(sink.at(-1)!.outcome, { status: 'observed', nextItemId: 'c', observedAtMs: T0 + 3 * MIN, studentRank: 1 });
    await second.close();
    // And what was resolved stays resolved: a third start has only u2 pending, and a re-delivered case is ignored.
    const third = await open(dir);
    assert.deepEqual(third.join.pendingCases().map((c) => c.user.userId), ['u2']);
    assert.deepEqual(await third.addCases([teacherCase('u1', T0, ['a', 'b'])]), { labelled: [], unjoinable: [] });
    assert.deepEqual((await third.advance(Number.POSITIVE_INFINITY)).labelled.map((l) => [l.case.user.userId, l.outcome.status]), [['u2', 'expired']]);
    await third.close();
  });

  it('restart: the case watermark comes back from the journal, so the restarted join forgets what the first would', async () => {
    const dir = await tempDir();
    const first = await open(dir);
    await first.observe([event('u1', 'next', T0 + MIN), event('u1', 'late', T0 + 100 * MIN)]);
    await first.advance(T0 + 100 * MIN, T0 + 90 * MIN);
    await first.close();
    const second = await open(dir);
    assert.equal(second.join.caseWatermarkMs, T0 + 90 * MIN);
    assert.equal(second.join.forgotten().allUsersUpToMs, T0 + 59 * MIN);
    assert.equal((await second.addCases([teacherCase('u1', T0)])).unjoinable.length, 1, 'its next interaction was forgotten');
    await second.close();
  });

  it('compaction keeps only what is pending, atomically, and a restart after it sees the same state', async () => {
    const dir = await tempDir();
    const join1 = await open(dir, [], { compactAfterEntries: 10 });
    for (let i = 0; i < 8; i++) await join1.addCases([teacherCase(`u${i}`, T0 + i)]);
    for (let i = 0; i < 6; i++) await join1.observe([event(`u${i}`, 'a', T0 + MIN + i)]);
    await join1.close();
    const lines = (await readFile(join(dir, OUTCOME_JOURNAL_FILE), 'utf8')).trim().split('\n');
    assert.ok(lines.length < 8 + 6 * 2, `compacted to ${lines.length} lines`);
    const join2 = await open(dir);
    assert.deepEqual(join2.join.pendingCases().map((c) => c.user.userId).sort(), ['u6', 'u7']);
    assert.ok(join2.join.isKnown('case-u0@' + T0), 'resolved ids survive compaction');
  });

  it('a torn last line (crash mid-append) is cut off and reported; a damaged middle line is fatal', async () => {
    const dir = await tempDir();
    const j = await open(dir);
    await j.addCases([teacherCase('u1', T0)]);
    await j.close();
    const path = join(dir, OUTCOME_JOURNAL_FILE);
    await appendFile(path, '{"t":"case","case":{"caseId":"torn');
    let torn = 0;
    const reopened = await open(dir, [], { onTornTail: (n) => (torn = n) });
    assert.ok(torn > 0);
    assert.equal(reopened.join.pendingCount, 1);
    await reopened.addCases([teacherCase('u2', T0)]);
    await reopened.close();
    assert.equal((await open(dir)).join.pendingCount, 2, 'appends after the cut are whole lines');

    await appendFile(path, 'not json\n{"t":"watermark","atMs":1}\n');
    await assert.rejects(open(dir), (err: unknown) => err instanceof FatalError && err.code === 'JOURNAL_CORRUPT');
  });
});
