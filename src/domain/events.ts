/**
 * The records that flow through the stream. Field names match the Avro schemas in `schemas/`;
 * `test/schemas/avro.test.ts` proves the two agree.
 */

export const EVENT_TYPES = ['view', 'click', 'cart', 'purchase', 'rating'] as const;
export type EventType = (typeof EVENT_TYPES)[number];

/** One user–item interaction: the input of the pipeline, keyed by `userId` on the log. */
export interface Interaction {
  readonly eventId: string;
  readonly userId: string;
  readonly itemId: string;
  readonly type: EventType;
  /** Rating, dwell seconds, price… meaning depends on `type`; null when the event carries none. */
  readonly value: number | null;
  readonly timestampMs: number;
  readonly context: Readonly<Record<string, string>>;
}

/** Catalogue entry for an item; the items topic is compacted by `itemId`. */
export interface Item {
  readonly itemId: string;
  readonly title: string;
  readonly categories: readonly string[];
  readonly description: string | null;
  readonly attributes: Readonly<Record<string, string>>;
  readonly timestampMs: number;
}

export interface RankedItem {
  readonly itemId: string;
  readonly score: number;
  /** Short CST sentences that explain the score; the first ones are the strongest. */
  readonly evidence: readonly string[];
}

/** What the pipeline publishes for one triggering interaction, keyed by `userId`. */
export interface Recommendation {
  /** Id of the interaction that triggered this list; consumers de-duplicate on it. */
  readonly eventId: string;
  readonly userId: string;
  readonly items: readonly RankedItem[];
  readonly modelVersion: string;
  /**
   * The online experiment's arm that served this list (`src/experiments/`); null outside an experiment and in
   * records written before the field existed (its Avro default).
   */
  readonly arm?: string | null;
  readonly generatedAtMs: number;
  /** Time from the interaction's arrival in the pipeline to this record being built. */
  readonly pipelineLatencyMs: number;
}

/** Where a record came from on the log; carried into the DLQ so a bad record can be found again. */
export interface SourcePosition {
  readonly topic: string;
  readonly partition: number;
  readonly offset: string;
}

/** A record the pipeline could not use, with its original bytes and why. */
export interface DeadLetter {
  readonly reason: string;
  readonly code: string;
  readonly source: SourcePosition;
  readonly key: Uint8Array | null;
  readonly payload: Uint8Array;
  /**
   * True when the record had a null value (a Kafka tombstone), which the log port hands over as empty bytes.
   * @default false
   */
  readonly payloadNull?: boolean;
  /** The record's original headers (`starstream-schema` included), so a fixed record can be replayed as it was. */
  readonly headers?: Readonly<Record<string, Uint8Array>>;
  readonly failedAtMs: number;
}
