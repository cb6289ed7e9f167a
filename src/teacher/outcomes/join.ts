import type { Interaction } from '../../domain/events.ts';
import type { CaseOutcome, TeacherCase } from '../../domain/teacher.ts';

/**
 * The outcome join: labels each sampled case with what its user did next. Pure state, no I/O: the worker
 * (`./worker.ts`) feeds it from the log and journals what it changes (`./journal.ts`).
 *
 * Semantics:
 * - the *next interaction* of a case is the first interaction of the case's user, in the order the join
 *   receives them, whose event time is strictly after the case's (`atMs`); the triggering event itself, and
 *   anything at or before `atMs`, is history, which the case already froze;
 * - it labels the case `observed` when it is at most `horizonMs` after `atMs` (nextItemId, observedAtMs and the
 *   item's 1-based rank in the case's candidate list, the serving scorer's order); when it comes later, or
 *   when the watermark (see `advance`) passes `atMs + horizonMs + allowedLatenessMs` first, the case is
 *   `expired`. The slack absorbs interactions that arrive a little out of event-time order;
 * - the case is never changed: the outcome is a separate value, and only the observed item's id and time
 *   are read from the future, as the label, never as evidence.
 *
 * Cases and interactions come from two topics, so a case can arrive after the interaction that labels it (the
 * pipeline writes the case after reading the interaction). The join therefore keeps each user's latest
 * interactions (at most `maxBufferedPerUser`, and none older than `horizonMs + allowedLatenessMs` behind the
 * watermarks of both streams) and looks there first when a case arrives. When something the case might need
 * was already forgotten (a case arriving very late, or a user with more interactions in between than the
 * buffer holds), the case is returned as `unjoinable` instead of being guessed.
 */

export interface OutcomeJoinOptions {
  readonly horizonMs: number;
  readonly allowedLatenessMs: number;
  readonly maxBufferedPerUser: number;
}

export interface LabelledCase {
  readonly case: TeacherCase;
  readonly outcome: CaseOutcome;
}

/** What one call changed; the worker journals `seen` and `done` and hands `labelled` on. */
export interface JoinResult {
  readonly labelled: LabelledCase[];
  /** Cases that could not be labelled exactly (see above); resolved, so never labelled later. */
  readonly unjoinable: TeacherCase[];
}

/** An interaction as the join keeps it. */
export interface SeenInteraction {
  readonly userId: string;
  readonly eventId: string;
  readonly itemId: string;
  readonly atMs: number;
}

export class OutcomeJoin {
  private readonly pending = new Map<string, TeacherCase>();
  private readonly pendingByUser = new Map<string, Set<string>>();
  private readonly buffer = new Map<string, SeenInteraction[]>();
  /** Per user: the latest event time of an interaction dropped from a full buffer. */
  private readonly evictedUpTo = new Map<string, number>();
  /** Resolved case ids (with their case time), so a re-delivered case is not labelled twice. */
  private readonly resolved = new Map<string, number>();
  /** Interactions at or before this were pruned from every buffer. */
  private prunedUpTo = Number.NEGATIVE_INFINITY;
  private watermark = Number.NEGATIVE_INFINITY;
  /** Event time up to which every case has been read: buffered interactions are kept until the cases catch up. */
  private caseWatermark = Number.NEGATIVE_INFINITY;

  constructor(private readonly options: OutcomeJoinOptions) {}

  /** Event time up to which every interaction has been observed (see `advance`). */
  get watermarkMs(): number {
    return this.watermark;
  }

  /** Event time up to which every case has been read (see `advance`). */
  get caseWatermarkMs(): number {
    return this.caseWatermark;
  }

  get pendingCount(): number {
    return this.pending.size;
  }

  pendingCases(): TeacherCase[] {
    return [...this.pending.values()];
  }

  bufferedInteractions(): SeenInteraction[] {
    return [...this.buffer.values()].flat();
  }

  resolvedCases(): [caseId: string, atMs: number][] {
    return [...this.resolved.entries()];
  }

  /** Where the buffer has forgotten interactions (all users, and per user), for snapshots. */
  forgotten(): { readonly allUsersUpToMs: number; readonly perUser: [userId: string, upToMs: number][] } {
    return { allUsersUpToMs: this.prunedUpTo, perUser: [...this.evictedUpTo.entries()] };
  }

  isKnown(caseId: string): boolean {
    return this.pending.has(caseId) || this.resolved.has(caseId);
  }

  /** A case from the side stream. A case seen before (pending or resolved) changes nothing. */
  addCase(c: TeacherCase): JoinResult {
    const result: JoinResult = { labelled: [], unjoinable: [] };
    if (this.isKnown(c.caseId)) return result;
    const userId = c.user.userId;
    const forgotten = Math.max(this.prunedUpTo, this.evictedUpTo.get(userId) ?? Number.NEGATIVE_INFINITY);
    if (forgotten > c.atMs) {
      this.resolve(c);
      result.unjoinable.push(c);
      return result;
    }
    const next = this.buffer.get(userId)?.find((s) => s.atMs > c.atMs);
    if (next) {
      this.resolve(c);
      result.labelled.push(this.label(c, next));
      return result;
    }
    this.pending.set(c.caseId, c);
    let ids = this.pendingByUser.get(userId);
    if (!ids) this.pendingByUser.set(userId, (ids = new Set()));
    ids.add(c.caseId);
    this.expireDue(result);
    return result;
  }

  /** An interaction from the stream; labels the user's pending cases it follows. */
  observe(event: Pick<Interaction, 'userId' | 'eventId' | 'itemId' | 'timestampMs'>): JoinResult {
    const result: JoinResult = { labelled: [], unjoinable: [] };
    const seen: SeenInteraction = { userId: event.userId, eventId: event.eventId, itemId: event.itemId, atMs: event.timestampMs };
    if (!this.remember(seen)) return result;
    const ids = this.pendingByUser.get(seen.userId);
    if (ids) {
      for (const caseId of [...ids]) {
        const c = this.pending.get(caseId)!;
        if (seen.atMs <= c.atMs) continue;
        this.resolve(c);
        result.labelled.push(this.label(c, seen));
      }
    }
    return result;
  }

  /**
   * Moves the watermarks: the event time up to which every interaction has been observed, and the one up to
   * which every case has been read (only that one lets the buffer forget: a case behind it could still need
   * what it holds). The feeder decides both, because only it knows the partitions (the worker takes the
   * minimum over the partitions of each topic, so a partition read behind the others neither expires its
   * users' cases nor lets the buffer forget what its cases need). The end of a finite replay is
   * `advance(Infinity)`: everything pending expires. Neither watermark moves back.
   */
  advance(watermarkMs: number, caseWatermarkMs = Number.NEGATIVE_INFINITY): JoinResult {
    const result: JoinResult = { labelled: [], unjoinable: [] };
    this.watermark = Math.max(this.watermark, watermarkMs);
    this.caseWatermark = Math.max(this.caseWatermark, caseWatermarkMs);
    this.expireDue(result);
    this.prune();
    return result;
  }

  /**
   * Rebuilds state from a journal entry without labelling anything: the journal already holds what each
   * entry led to (`done` after the case it resolved). Only `./journal.ts` replay should call these.
   */
  restoreCase(c: TeacherCase): void {
    if (this.isKnown(c.caseId)) return;
    this.pending.set(c.caseId, c);
    let ids = this.pendingByUser.get(c.user.userId);
    if (!ids) this.pendingByUser.set(c.user.userId, (ids = new Set()));
    ids.add(c.caseId);
  }

  restoreSeen(seen: SeenInteraction): void {
    this.remember(seen);
  }

  restoreForgotten(userId: string | null, upToMs: number): void {
    if (userId === null) this.prunedUpTo = Math.max(this.prunedUpTo, upToMs);
    else this.evictedUpTo.set(userId, Math.max(this.evictedUpTo.get(userId) ?? Number.NEGATIVE_INFINITY, upToMs));
  }

  restoreDone(caseId: string, atMs: number): void {
    const c = this.pending.get(caseId);
    if (c) this.resolve(c);
    else this.resolved.set(caseId, atMs);
  }

  /** Adds to the user's buffer in event-time order; false for an interaction already there (re-delivery). */
  private remember(seen: SeenInteraction): boolean {
    let list = this.buffer.get(seen.userId);
    if (!list) this.buffer.set(seen.userId, (list = []));
    if (list.some((s) => s.eventId === seen.eventId)) return false;
    let at = list.length;
    while (at > 0 && list[at - 1]!.atMs > seen.atMs) at--;
    list.splice(at, 0, seen);
    while (list.length > this.options.maxBufferedPerUser) {
      const dropped = list.shift()!;
      this.evictedUpTo.set(seen.userId, Math.max(this.evictedUpTo.get(seen.userId) ?? Number.NEGATIVE_INFINITY, dropped.atMs));
    }
    return true;
  }

  private label(c: TeacherCase, next: SeenInteraction): LabelledCase {
    if (next.atMs - c.atMs > this.options.horizonMs) {
      return { case: c, outcome: { status: 'expired', horizonMs: this.options.horizonMs } };
    }
    const index = c.candidates.findIndex((e) => e.itemId === next.itemId);
    return {
      case: c,
      outcome: { status: 'observed', nextItemId: next.itemId, observedAtMs: next.atMs, studentRank: index < 0 ? null : index + 1 },
    };
  }

  private resolve(c: TeacherCase): void {
    this.pending.delete(c.caseId);
    const ids = this.pendingByUser.get(c.user.userId);
    ids?.delete(c.caseId);
    if (ids?.size === 0) this.pendingByUser.delete(c.user.userId);
    this.resolved.set(c.caseId, c.atMs);
  }

  private expireDue(result: JoinResult): void {
    const due = this.watermark - this.options.horizonMs - this.options.allowedLatenessMs;
    for (const c of this.pending.values()) {
      if (c.atMs < due) {
        this.resolve(c);
        result.labelled.push({ case: c, outcome: { status: 'expired', horizonMs: this.options.horizonMs } });
      }
    }
  }

  /**
   * Drops what no case can need any more: interactions and resolved ids older than horizon + lateness behind
   * both the interactions and the cases. Behind the cases too, because the join may read the interactions
   * topic far ahead of the cases topic (a replay, a pipeline that lags): until the case watermark moves nothing
   * is pruned, and the buffer is bounded by `maxBufferedPerUser` alone. The case watermark is the feeder's
   * (see `advance`), not the latest case seen: cases from a partition read behind the others are still to come.
   */
  private prune(): void {
    const limit = Math.min(this.watermark, this.caseWatermark) - this.options.horizonMs - this.options.allowedLatenessMs;
    if (!(limit > this.prunedUpTo)) return;
    // Pruning is O(buffered users); do it when the limit moved by a meaningful step only.
    if (limit - this.prunedUpTo < this.options.allowedLatenessMs / 4 && Number.isFinite(this.prunedUpTo)) return;
    for (const [userId, list] of this.buffer) {
      let drop = 0;
      while (drop < list.length && list[drop]!.atMs <= limit) drop++;
      if (drop === list.length) this.buffer.delete(userId);
      else if (drop > 0) list.splice(0, drop);
    }
    for (const [userId, upTo] of this.evictedUpTo) if (upTo <= limit) this.evictedUpTo.delete(userId);
    for (const [caseId, atMs] of this.resolved) if (atMs <= limit) this.resolved.delete(caseId);
    this.prunedUpTo = limit;
  }
}
