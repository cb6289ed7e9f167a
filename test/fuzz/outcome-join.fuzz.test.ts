import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import type { CaseOutcome } from '../../src/domain/teacher.ts';
import { OutcomeJoin, type JoinResult } from '../../src/teacher/outcomes/join.ts';
import { T0, teacherCase } from '../teacher/case-fixtures.ts';
import { fuzz } from './fuzz.ts';

/**
 * Clock skew between partitions, for the outcome join. Interactions are keyed by user, so one user's events
 * stay in order on one partition, but partitions are read at different speeds: one can run hours behind the
 * others, and cases come from another topic with their own delay. The feeder advances the watermark to the
 * minimum event time over partitions (as `src/teacher/outcomes/worker.ts` does).
 *
 * Properties, for any interleaving of partitions and cases and any gaps in event time:
 * - every case ends resolved exactly once (labelled or unjoinable) after `advance(Infinity)`;
 * - a labelled case carries exactly the outcome read off the user's own time line (the first interaction
 *   after the case: observed within the horizon, else expired) — skew never expires a case early or labels
 *   it with another interaction;
 * - a case is unjoinable only when it arrived after the join had forgotten part of its user's time line, and
 *   with cases delivered right behind their triggering event, never.
 */

const MIN = 60_000;
const OPTIONS = { horizonMs: 30 * MIN, allowedLatenessMs: MIN, maxBufferedPerUser: 6 };

interface Ev {
  readonly userId: string;
  readonly itemId: string;
  readonly timestampMs: number;
  readonly eventId: string;
}

interface World {
  readonly partitions: Ev[][];
  /** Indexes into the user's events: a case at that event's time. */
  readonly cases: { readonly user: number; readonly at: number }[];
  /** The delivery schedule: which stream delivers next (partition index, or -1 for the cases topic). */
  readonly schedule: number[];
}

const world = (promptCases: boolean): fc.Arbitrary<World> =>
  fc
    .record({
      partitions: fc.integer({ min: 1, max: 4 }),
      users: fc.array(fc.array(fc.integer({ min: 1, max: 50 * MIN }), { minLength: 1, maxLength: 12 }), { minLength: 1, maxLength: 6 }),
      caseSeeds: fc.array(fc.tuple(fc.nat(), fc.nat()), { maxLength: 10 }),
      schedule: fc.array(fc.integer({ min: -1, max: 3 }), { maxLength: 200 }),
    })
    .map(({ partitions, users, caseSeeds, schedule }) => {
      const timeline = users.map((gaps, u) => {
        let t = T0;
        return gaps.map((gap, k) => ({ userId: `u${u}`, itemId: `i${(u * 7 + k) % 5}`, timestampMs: (t += gap), eventId: `u${u}e${k}` }));
      });
      const parts: Ev[][] = Array.from({ length: partitions }, () => []);
      // Users share partitions; a partition's events are in event-time order, as one producer writes them.
      timeline.forEach((events, u) => parts[u % partitions]!.push(...events));
      for (const p of parts) p.sort((a, b) => a.timestampMs - b.timestampMs);
      const seen = new Set<string>();
      const cases = caseSeeds
        .map(([a, b]) => ({ user: a % timeline.length, at: b % timeline[a % timeline.length]!.length }))
        .filter((c) => !seen.has(`${c.user}/${c.at}`) && seen.add(`${c.user}/${c.at}`));
      return { partitions: parts, cases, schedule: promptCases ? [] : schedule.map((s) => (s >= partitions ? s % partitions : s)) };
    });

/** The outcome read off the user's own time line. */
function expected(events: readonly Ev[], atMs: number): CaseOutcome {
  const next = events.find((e) => e.timestampMs > atMs);
  if (!next || next.timestampMs - atMs > OPTIONS.horizonMs) return { status: 'expired', horizonMs: OPTIONS.horizonMs };
  return { status: 'observed', nextItemId: next.itemId, observedAtMs: next.timestampMs, studentRank: null };
}

function run(w: World): { outcomes: Map<string, CaseOutcome | 'unjoinable'>; caseIds: string[]; expect: Map<string, CaseOutcome> } {
  const join = new OutcomeJoin(OPTIONS);
  const outcomes = new Map<string, CaseOutcome | 'unjoinable'>();
  const take = (r: JoinResult): void => {
    for (const l of r.labelled) {
      assert.ok(!outcomes.has(l.case.caseId), `${l.case.caseId} resolved twice`);
      outcomes.set(l.case.caseId, l.outcome);
    }
    for (const c of r.unjoinable) {
      assert.ok(!outcomes.has(c.caseId), `${c.caseId} resolved twice`);
      outcomes.set(c.caseId, 'unjoinable');
    }
  };
  const byUser = new Map<string, Ev[]>();
  for (const p of w.partitions) for (const e of p) byUser.set(e.userId, [...(byUser.get(e.userId) ?? []), e]);
  for (const events of byUser.values()) events.sort((a, b) => a.timestampMs - b.timestampMs);
  const userIds = [...byUser.keys()].sort((a, b) => Number(a.slice(1)) - Number(b.slice(1)));
  // Cases come in case-time order (one pipeline writes them), each after its triggering event was read.
  const cases = w.cases
    .map(({ user, at }) => {
      const events = byUser.get(userIds[user % userIds.length]!)!;
      const trigger = events[at % events.length]!;
      return { trigger, c: teacherCase(trigger.userId, trigger.timestampMs, ['zz'], { eventId: trigger.eventId }) };
    })
    .sort((a, b) => a.c.atMs - b.c.atMs);
  const expect = new Map(cases.map(({ c }) => [c.caseId, expected(byUser.get(c.user.userId)!, c.atMs)]));
  const next = w.partitions.map(() => 0);
  const delivered = new Set<string>();
  let nextCase = 0;
  // The cases' watermark: one partition, read in order, so the last case read.
  let caseMark = Number.NEGATIVE_INFINITY;
  const deliverCase = (): boolean => {
    const item = cases[nextCase];
    if (!item || !delivered.has(item.trigger.eventId)) return false;
    nextCase++;
    take(join.addCase(item.c));
    caseMark = item.c.atMs;
    take(join.advance(Number.NEGATIVE_INFINITY, caseMark));
    return true;
  };
  const deliver = (p: number): boolean => {
    const e = w.partitions[p]![next[p]!];
    if (!e) return false;
    next[p]!++;
    delivered.add(e.eventId);
    take(join.observe(e));
    // The watermark: every partition has been read up to its last delivered event (none: nothing yet).
    const marks = w.partitions.map((part, i) => (next[i]! === 0 ? Number.NEGATIVE_INFINITY : next[i]! >= part.length ? Number.POSITIVE_INFINITY : part[next[i]! - 1]!.timestampMs));
    const mark = Math.min(...marks);
    if (Number.isFinite(mark)) take(join.advance(mark, caseMark));
    return true;
  };
  const prompt = w.schedule.length === 0;
  for (const s of w.schedule) {
    if (s < 0) deliverCase();
    else deliver(s);
  }
  // Drain: the rest in partition round-robin; cases as soon as their trigger was read.
  for (let more = true; more; ) {
    more = false;
    for (let p = 0; p < w.partitions.length; p++) {
      if (deliver(p)) more = true;
      if (prompt) while (deliverCase());
    }
  }
  while (deliverCase());
  take(join.advance(Number.POSITIVE_INFINITY));
  return { outcomes, caseIds: cases.map(({ c }) => c.caseId), expect };
}

describe('outcome join under clock skew between partitions (fuzzed)', () => {
  it('labels every case exactly as its user time line says, or unjoinable; never early, never with another interaction', () => {
    fuzz(
      fc.property(world(false), (w) => {
        const { outcomes, caseIds, expect } = run(w);
        for (const id of caseIds) {
          const got = outcomes.get(id);
          assert.ok(got !== undefined, `${id} never resolved`);
          if (got !== 'unjoinable') assert.deepEqual(got, expect.get(id), id);
        }
      }),
      { seed: 9301, numRuns: 300 },
    );
  });

  it('with cases delivered right behind their trigger, none is unjoinable', () => {
    fuzz(
      fc.property(world(true), (w) => {
        const { outcomes, caseIds, expect } = run(w);
        for (const id of caseIds) assert.deepEqual(outcomes.get(id), expect.get(id), id);
      }),
      { seed: 9302, numRuns: 300 },
    );
  });
});
