import { join } from 'node:path';
import type { Interaction } from '../../domain/events.ts';
import type { TeacherCase } from '../../domain/teacher.ts';
import { errorMessage, FatalError } from '../../errors/index.ts';
import type { FileSystem } from '../../util/files.ts';
import { Journal } from './journal.ts';
import { OutcomeJoin, type JoinResult, type OutcomeJoinOptions, type SeenInteraction } from './join.ts';

/**
 * The outcome join with its state in a journal (`<dataDir>/outcomes.journal.jsonl`), so pending cases and
 * the interactions buffered for late cases survive restarts.
 *
 * Why a journal and not a re-read of the topics: the cases a restart needs were sampled up to a horizon ago,
 * before the committed offsets of both topics; re-reading would mean seeking each topic back by time, which
 * the log port does not offer (and Kafka retention may already have removed). The journal holds exactly
 * what is pending, and compaction keeps it that small.
 *
 * Order per call, for at-least-once: apply in memory → hand the results to `sink` (it must tolerate a case
 * twice: de-duplicate on `caseId`) → append the inputs and resolutions to the journal (fsync) → return; only
 * then may the caller let the log commit. A crash before the journal append re-delivers the records, which
 * recompute the same results. A call whose sink or append fails without a crash (a full disk) is undone the
 * same way: the state is read back from the journal before the error goes to the caller, so the records,
 * when they come again, are not taken for ones the join already has. Calls must not overlap (the worker
 * queues them).
 */

export type OutcomeJournalEntry =
  | { readonly t: 'case'; readonly case: TeacherCase }
  | { readonly t: 'seen'; readonly seen: SeenInteraction }
  | { readonly t: 'done'; readonly caseId: string; readonly atMs: number }
  /** The interactions' watermark and, when known, the cases' (absent in journals written before it was kept). */
  | { readonly t: 'watermark'; readonly atMs: number; readonly casesAtMs?: number }
  /** The buffer forgot interactions up to `atMs` (of one user, or of all when `userId` is null). */
  | { readonly t: 'forgotten'; readonly userId: string | null; readonly atMs: number };

export type OutcomeSink = (result: JoinResult) => Promise<void>;

export interface DurableOutcomeJoinOptions extends OutcomeJoinOptions {
  readonly dataDir: string;
  readonly compactAfterEntries: number;
  readonly sink: OutcomeSink;
  /** A torn last journal line was cut off at open (a crash mid-append; nothing acknowledged is lost). */
  readonly onTornTail?: (bytes: number) => void;
  /** The journal's file operations (tests inject a failing one); `node:fs` by default. */
  readonly fs?: FileSystem;
}

export const OUTCOME_JOURNAL_FILE = 'outcomes.journal.jsonl';

export class DurableOutcomeJoin {
  private constructor(
    private state: OutcomeJoin,
    private journal: Journal<OutcomeJournalEntry>,
    private readonly options: DurableOutcomeJoinOptions,
  ) {}

  /** The join's state (as of the last call that succeeded). */
  get join(): OutcomeJoin {
    return this.state;
  }

  static async open(options: DurableOutcomeJoinOptions): Promise<DurableOutcomeJoin> {
    const { state, journal } = await DurableOutcomeJoin.load(options);
    return new DurableOutcomeJoin(state, journal, options);
  }

  /** The state the journal holds. */
  private static async load(options: DurableOutcomeJoinOptions): Promise<{ state: OutcomeJoin; journal: Journal<OutcomeJournalEntry> }> {
    const state = new OutcomeJoin(options);
    const journal = await Journal.open<OutcomeJournalEntry>(
      join(options.dataDir, OUTCOME_JOURNAL_FILE),
      (e) => {
        if (e.t === 'case') state.restoreCase(e.case);
        else if (e.t === 'seen') state.restoreSeen(e.seen);
        else if (e.t === 'done') state.restoreDone(e.caseId, e.atMs);
        else if (e.t === 'forgotten') state.restoreForgotten(e.userId, e.atMs);
        else state.advance(e.atMs, e.casesAtMs);
      },
      { ...(options.onTornTail ? { onTornTail: options.onTornTail } : {}), ...(options.fs ? { fs: options.fs } : {}) },
    );
    return { state, journal };
  }

  async addCases(cases: readonly TeacherCase[]): Promise<JoinResult> {
    const entries: OutcomeJournalEntry[] = [];
    const result = merge(
      cases.map((c) => {
        if (this.join.isKnown(c.caseId)) return { labelled: [], unjoinable: [] };
        entries.push({ t: 'case', case: c });
        const r = this.join.addCase(c);
        entries.push(...doneEntries(r));
        return r;
      }),
    );
    return this.finish(result, entries);
  }

  async observe(events: readonly Pick<Interaction, 'userId' | 'eventId' | 'itemId' | 'timestampMs'>[]): Promise<JoinResult> {
    const entries: OutcomeJournalEntry[] = [];
    const result = merge(
      events.map((e) => {
        const r = this.join.observe(e);
        entries.push({ t: 'seen', seen: { userId: e.userId, eventId: e.eventId, itemId: e.itemId, atMs: e.timestampMs } });
        entries.push(...doneEntries(r));
        return r;
      }),
    );
    return this.finish(result, entries);
  }

  /** Moves the watermarks (`OutcomeJoin.advance`; `Infinity` at the end of a finite replay expires everything pending). */
  async advance(watermarkMs: number, caseWatermarkMs?: number): Promise<JoinResult> {
    const result = this.join.advance(watermarkMs, caseWatermarkMs);
    // JSON has no Infinity: an unbounded advance is recorded by its resolutions only.
    const entries: OutcomeJournalEntry[] = Number.isFinite(watermarkMs) ? [watermarkEntry(watermarkMs, this.join.caseWatermarkMs)] : [];
    return this.finish(result, [...entries, ...doneEntries(result)]);
  }

  /** Waits for pending journal writes. */
  async close(): Promise<void> {
    await this.journal.flush();
  }

  private async finish(result: JoinResult, entries: OutcomeJournalEntry[]): Promise<JoinResult> {
    try {
      if (result.labelled.length + result.unjoinable.length > 0) await this.options.sink(result);
      await this.journal.append(entries);
    } catch (err) {
      // Undo the call: back to what the journal holds, as after a crash.
      try {
        ({ state: this.state, journal: this.journal } = await DurableOutcomeJoin.load(this.options));
      } catch (cause) {
        throw new FatalError('OUTCOME_STATE_LOST', `outcome join: a failed call (${errorMessage(err)}) could not be undone from the journal`, { cause });
      }
      throw err;
    }
    if (this.journal.entries >= this.options.compactAfterEntries) await this.journal.compact(this.snapshot());
    return result;
  }

  /** The state as journal entries: buffered interactions first (they set the watermark), then what is pending. */
  private snapshot(): OutcomeJournalEntry[] {
    const out: OutcomeJournalEntry[] = [];
    const seen = this.join.bufferedInteractions().sort((a, b) => a.atMs - b.atMs);
    for (const s of seen) out.push({ t: 'seen', seen: s });
    if (Number.isFinite(this.join.watermarkMs)) out.push(watermarkEntry(this.join.watermarkMs, this.join.caseWatermarkMs));
    const forgotten = this.join.forgotten();
    if (Number.isFinite(forgotten.allUsersUpToMs)) out.push({ t: 'forgotten', userId: null, atMs: forgotten.allUsersUpToMs });
    for (const [userId, atMs] of forgotten.perUser) out.push({ t: 'forgotten', userId, atMs });
    for (const [caseId, atMs] of this.join.resolvedCases()) out.push({ t: 'done', caseId, atMs });
    for (const c of this.join.pendingCases()) out.push({ t: 'case', case: c });
    return out;
  }
}

function watermarkEntry(atMs: number, casesAtMs: number): OutcomeJournalEntry {
  return Number.isFinite(casesAtMs) ? { t: 'watermark', atMs, casesAtMs } : { t: 'watermark', atMs };
}

function doneEntries(r: JoinResult): OutcomeJournalEntry[] {
  return [...r.labelled.map((l) => l.case), ...r.unjoinable].map((c) => ({ t: 'done', caseId: c.caseId, atMs: c.atMs }) as const);
}

function merge(results: readonly JoinResult[]): JoinResult {
  return { labelled: results.flatMap((r) => r.labelled), unjoinable: results.flatMap((r) => r.unjoinable) };
}
