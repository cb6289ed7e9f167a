import type { Interaction } from '../domain/events.ts';

/**
 * The experiment's outcome join, in process: each user's last served list (with the cell it counts in) is
 * joined to that user's next interaction, which is one outcome of that cell: the 0-based rank of the
 * interaction's item in the list, or −1. Users are keyed to partitions, so the instance that served a user's
 * list is the one that sees the user's next event; no shuffle is needed.
 *
 * The processor tells {@link OutcomeJoin.observe} every accepted interaction before it is ranked (rate-limited
 * ones too: they are the user's next action all the same), then {@link OutcomeJoin.served} the list it ranked.
 *
 * At-least-once: a batch that failed is redelivered and ranked again. An event already joined (by id, in a
 * bounded window of recent ids) neither makes an outcome again nor replaces the user's list, so a
 * redelivered batch leaves the join as its first delivery did. Memory is bounded: the least recently served
 * users are forgotten beyond `maxUsers` (their next event makes no outcome).
 */

export interface PendingList {
  readonly eventId: string;
  readonly cell: string;
  readonly itemIds: readonly string[];
}

export interface JoinSnapshot {
  readonly pending: readonly (readonly [string, PendingList])[];
}

export class OutcomeJoin {
  private readonly pending = new Map<string, PendingList>();
  /** Recent event ids, oldest first: `true` once the event's own list was registered. */
  private readonly seen = new Map<string, boolean>();

  /**
   * @param onOutcome told each joined outcome: the cell of the list and the rank of the next item in it (−1: absent)
   */
  constructor(
    private readonly onOutcome: (cell: string, rank: number) => void,
    private readonly maxUsers = 200_000,
    private readonly seenWindow = 100_000,
  ) {}

  /** The user's next interaction: an outcome of the user's pending list, if any. Once per event id. */
  observe(event: Interaction): void {
    if (this.seen.has(event.eventId)) return;
    this.remember(event.eventId, false);
    const previous = this.pending.get(event.userId);
    if (!previous) return;
    this.pending.delete(event.userId);
    this.onOutcome(previous.cell, previous.itemIds.indexOf(event.itemId));
  }

  /**
   * The list served for `event` (top first), counting in `cell`; null cell = counts nowhere (the user's next
   * event then makes no outcome). Once per event id.
   */
  served(event: Interaction, itemIds: readonly string[], cell: string | null): void {
    if (this.seen.get(event.eventId) === true) return;
    this.remember(event.eventId, true);
    this.pending.delete(event.userId);
    if (cell === null) return;
    this.pending.set(event.userId, { eventId: event.eventId, cell, itemIds });
    if (this.pending.size > this.maxUsers) this.pending.delete(this.pending.keys().next().value!);
  }

  snapshot(): JoinSnapshot {
    return { pending: [...this.pending] };
  }

  /**
   * The pending lists of a saved snapshot (a restart): users' next events join to them as if never stopped.
   * They replace the lists held now (a checkpoint's replace those read from `state.json`).
   */
  restore(snapshot: JoinSnapshot): void {
    this.pending.clear();
    for (const [userId, list] of snapshot.pending) this.pending.set(userId, list);
  }

  private remember(eventId: string, registered: boolean): void {
    this.seen.set(eventId, registered);
    if (this.seen.size > this.seenWindow) this.seen.delete(this.seen.keys().next().value!);
  }
}
