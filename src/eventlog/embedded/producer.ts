import { FatalError } from '../../errors/index.ts';
import type { EventProducer, OutgoingRecord } from '../port.ts';

/** What a producer needs from the embedded log. */
export interface AppendTarget {
  readonly closed: boolean;
  /** True when no topic of `records` is over its backlog bound. */
  hasRoomFor(records: readonly OutgoingRecord[]): boolean;
  /** Resolves at the next change that may have made room for `records` (rejects when the log closes). */
  nextRoomChange(records: readonly OutgoingRecord[]): Promise<void>;
  /** Appends in order and wakes the consumers; throws `BadInputError` for a malformed record. */
  append(records: readonly OutgoingRecord[]): void;
}

/**
 * A producer of the embedded log. `send` appends at once while there is room, in the caller's tick; once a
 * topic is over its backlog bound, sends queue behind each other (so per-key order holds across calls) until
 * the consumers commit enough. Records are appended whole: a send never lands half.
 */
export class EmbeddedProducer implements EventProducer {
  private queued = 0;
  private tail: Promise<void> = Promise.resolve();
  private closed = false;

  constructor(private readonly log: AppendTarget) {}

  send(records: readonly OutgoingRecord[]): Promise<void> {
    if (this.closed || this.log.closed) {
      return Promise.reject(new FatalError('EVENT_LOG_CLOSED', 'send on a closed embedded producer'));
    }
    if (this.queued === 0 && this.log.hasRoomFor(records)) {
      try {
        this.log.append(records);
        return Promise.resolve();
      } catch (err) {
        return Promise.reject(err);
      }
    }
    this.queued++;
    const sent = this.tail.then(() => this.appendWhenRoom(records)).finally(() => this.queued--);
    this.tail = sent.catch(() => undefined);
    return sent;
  }

  /** Waits for the sends already queued; they finish once the consumers make room. */
  async close(): Promise<void> {
    this.closed = true;
    await this.tail;
  }

  private async appendWhenRoom(records: readonly OutgoingRecord[]): Promise<void> {
    while (!this.log.hasRoomFor(records)) await this.log.nextRoomChange(records);
    this.log.append(records);
  }
}
