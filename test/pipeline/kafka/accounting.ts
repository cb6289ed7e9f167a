/**
 * The no-loss bookkeeping of the pipeline-on-Kafka tests.
 *
 * `startCollector` reads the interactions topic (the ledger of what was fed in, by partition and offset), the
 * recommendations topic (by the triggering event id, from the `starstream-event-id` header) and the DLQ (by
 * the source partition/offset headers) with its own consumer group, from the beginning, into maps. The
 * collector is itself an at-least-once consumer (a broker restart may make it read a stretch again), so it
 * skips any record at or below the last offset it saw of that partition: a duplicate it reports is one that is
 * really on the topic, never one of its own re-reads.
 *
 * `account` then checks the pipeline's promise: every input offset is answered by a recommendation carrying
 * its event id, or by a dead letter naming its partition/offset, and by only one of the two; more than one
 * answer is a duplicate (allowed by at-least-once only around a failure, so counted and reported).
 */
import assert from 'node:assert/strict';
import type { TestContext } from 'node:test';
import kafkajs from 'kafkajs';
import type { DeadLetterRecord as DeadLetterEnvelope } from '../../../src/eventlog/codec/avro.ts';
import type { Codec, Codecs } from '../../../src/eventlog/codec/avro.ts';
import type { Framing } from '../../../src/eventlog/codec/framing.ts';
import type { Headers } from '../../../src/eventlog/port.ts';
import type { Recommendation } from '../../../src/domain/events.ts';
import { DLQ_HEADERS, EVENT_ID_HEADER } from '../../../src/pipeline/outputs.ts';
import { uniqueName } from '../../helpers.ts';
import { onCleanup } from './harness.ts';

/** `partition:offset`, the identity of a record within one topic. */
export type Position = `${number}:${string}`;

export function position(partition: number, offset: string): Position {
  return `${partition}:${offset}`;
}

export interface InputRecord {
  readonly partition: number;
  readonly offset: string;
  readonly key: string | null;
  /** Null when the bytes are not an interaction (garbage, unknown schema): only the DLQ can answer those. */
  readonly eventId: string | null;
  readonly userId: string | null;
  /** The record's bytes, with `keepRecords`. */
  readonly value?: Buffer;
}

export interface SeenRecommendation {
  /** From the `starstream-event-id` header. */
  readonly eventId: string;
  readonly key: string | null;
  /** Where the recommendation itself sits on the output topic. */
  readonly partition: number;
  readonly offset: string;
  /** With `keepRecords`: the decoded body. */
  readonly body?: Recommendation;
}

export interface SeenDeadLetter {
  readonly source: { readonly topic: string; readonly partition: number; readonly offset: string };
  readonly code: string;
  readonly reason: string;
  readonly key: Buffer | null;
  readonly headers: Readonly<Record<string, string>>;
  readonly partition: number;
  readonly offset: string;
  /** With `keepRecords`: the decoded DeadLetter envelope (original key and bytes inside). */
  readonly envelope?: DeadLetterEnvelope;
}

export interface CollectorOptions {
  readonly brokers: readonly string[];
  readonly topics: {
    readonly interactions: string;
    readonly recommendations: string;
    readonly deadLetters: string;
  };
  readonly codecs: Codecs;
  readonly framing: Framing;
  /** Keep input bytes and decode recommendation bodies and DLQ envelopes (small runs that inspect them). */
  readonly keepRecords?: boolean;
}

export interface Collector {
  /** Input records by position on the interactions topic. */
  readonly inputs: ReadonlyMap<Position, InputRecord>;
  /** Every recommendation seen, by triggering event id; more than one = duplicates. */
  readonly recommendations: ReadonlyMap<string, readonly SeenRecommendation[]>;
  /** Every dead letter of the interactions topic, by source position. */
  readonly deadLetters: ReadonlyMap<Position, readonly SeenDeadLetter[]>;
  /** Dead letters of other source topics (the items topic). */
  readonly otherDeadLetters: readonly SeenDeadLetter[];
  /** Output records the collector could not read (an undecodable body, with `keepRecords`); should stay empty. */
  readonly problems: readonly string[];
  /** Output records read, duplicates included. */
  readonly outputRecords: number;
  /** True once the collector has read every topic up to the end offsets the broker reports now. */
  caughtUp(): Promise<boolean>;
  /** Polls until every expected input is read and answered, or fails with the accounting so far. */
  waitForAccounting(expectedInputs: number, limits: WaitLimits): Promise<Accounting>;
  stop(): Promise<void>;
}

export interface WaitLimits {
  /** Overall deadline, ms. */
  readonly timeoutMs: number;
  /** Fail earlier when no new output record arrives for this long, ms (a stuck pipeline). */
  readonly stallMs?: number;
  /** Extra text for the failure message (child process logs). */
  readonly diagnostics?: () => string;
  /** Says why waiting on is pointless (a pipeline process died); fails the wait at once with that. */
  readonly failed?: () => string | null;
}

/**
 * Starts the collector; it is stopped when `t` ends. Resolves once its consumer is running, so records
 * produced afterwards are certain to be read.
 */
export async function startCollector(t: TestContext, options: CollectorOptions): Promise<Collector> {
  const collector = new KafkaCollector(options);
  onCleanup(t, () => collector.stop());
  await collector.start();
  return collector;
}

class KafkaCollector implements Collector {
  readonly inputs = new Map<Position, InputRecord>();
  readonly recommendations = new Map<string, SeenRecommendation[]>();
  readonly deadLetters = new Map<Position, SeenDeadLetter[]>();
  readonly otherDeadLetters: SeenDeadLetter[] = [];
  readonly problems: string[] = [];
  outputRecords = 0;
  lastOutputAt = Date.now();
  /** Next offset to read, per `topic:partition`: records below it were seen already. */
  private readonly next = new Map<string, bigint>();
  private readonly kafka: kafkajs.Kafka;
  private readonly consumer: kafkajs.Consumer;
  private readonly admin: kafkajs.Admin;
  private stopping: Promise<void> | null = null;

  constructor(private readonly options: CollectorOptions) {
    // Retries long enough to ride out a broker restart; a crashed consumer is restarted by kafkajs.
    this.kafka = new kafkajs.Kafka({
      clientId: uniqueName('collector'),
      brokers: [...options.brokers],
      logLevel: kafkajs.logLevel.NOTHING,
      retry: { retries: 15, initialRetryTime: 200, maxRetryTime: 3_000 },
    });
    this.consumer = this.kafka.consumer({
      groupId: uniqueName('collector'),
      sessionTimeout: 10_000,
      heartbeatInterval: 1_000,
      maxWaitTimeInMs: 100,
      // Never restarted once stopping: kafkajs would otherwise reconnect after disconnect() and keep the
      // process alive.
      retry: {
        retries: 15,
        initialRetryTime: 200,
        maxRetryTime: 3_000,
        restartOnFailure: async () => this.stopping === null,
      },
    });
    this.admin = this.kafka.admin();
  }

  async start(): Promise<void> {
    const { topics } = this.options;
    await this.admin.connect();
    await this.consumer.connect();
    await this.consumer.subscribe({
      topics: [topics.interactions, topics.recommendations, topics.deadLetters],
      fromBeginning: true,
    });
    let joined: () => void = () => undefined;
    const hasJoined = new Promise<void>((resolve) => (joined = resolve));
    this.consumer.on(this.consumer.events.GROUP_JOIN, () => joined());
    await this.consumer.run({
      partitionsConsumedConcurrently: 3,
      eachBatch: async ({ batch }) => {
        for (const message of batch.messages) await this.take(batch.topic, batch.partition, message);
      },
    });
    await hasJoined;
  }

  private async take(topic: string, partition: number, message: kafkajs.KafkaMessage): Promise<void> {
    const where = `${topic}:${partition}`;
    const offset = BigInt(message.offset);
    if (offset < (this.next.get(where) ?? 0n)) return;
    this.next.set(where, offset + 1n);
    try {
      await this.takeRecord(topic, partition, message);
    } catch (err) {
      this.problems.push(`${topic} ${position(partition, message.offset)}: ${String(err)}`);
    }
  }

  private async takeRecord(topic: string, partition: number, message: kafkajs.KafkaMessage): Promise<void> {
    const { topics } = this.options;
    const headers = toHeaders(message.headers);
    const value = message.value ?? Buffer.alloc(0);
    if (topic === topics.interactions) {
      await this.takeInput(partition, message.offset, message.key, value, headers);
    } else if (topic === topics.recommendations) {
      this.outputRecords++;
      this.lastOutputAt = Date.now();
      await this.takeRecommendation(partition, message.offset, message.key, value, headers);
    } else if (topic === topics.deadLetters) {
      this.outputRecords++;
      this.lastOutputAt = Date.now();
      await this.takeDeadLetter(partition, message.offset, message.key, value, headers);
    }
  }

  private async takeInput(
    partition: number,
    offset: string,
    key: Buffer | null,
    value: Buffer,
    headers: Headers,
  ): Promise<void> {
    let eventId: string | null = null;
    let userId: string | null = null;
    try {
      const event = await this.options.framing.decode(this.options.codecs.interaction, value, headers);
      eventId = event.eventId;
      userId = event.userId;
    } catch {
      // Not an interaction: it must come out in the DLQ.
    }
    this.inputs.set(position(partition, offset), {
      partition,
      offset,
      key: key?.toString() ?? null,
      eventId,
      userId,
      ...(this.options.keepRecords ? { value: Buffer.from(value) } : {}),
    });
  }

  private async takeRecommendation(
    partition: number,
    offset: string,
    key: Buffer | null,
    value: Buffer,
    headers: Headers,
  ): Promise<void> {
    const eventId = headers[EVENT_ID_HEADER]?.toString() ?? '(no event id header)';
    const seen: SeenRecommendation = {
      eventId,
      key: key?.toString() ?? null,
      partition,
      offset,
      ...(this.options.keepRecords
        ? { body: { ...(await this.decode(this.options.codecs.recommendation, value, headers)) } }
        : {}),
    };
    const list = this.recommendations.get(eventId);
    if (list) list.push(seen);
    else this.recommendations.set(eventId, [seen]);
  }

  private async takeDeadLetter(
    partition: number,
    offset: string,
    key: Buffer | null,
    value: Buffer,
    headers: Headers,
  ): Promise<void> {
    const text: Record<string, string> = {};
    for (const [name, v] of Object.entries(headers)) text[name] = v.toString();
    const seen: SeenDeadLetter = {
      source: {
        topic: text[DLQ_HEADERS.topic] ?? '',
        partition: Number(text[DLQ_HEADERS.partition] ?? -1),
        offset: text[DLQ_HEADERS.offset] ?? '',
      },
      code: text[DLQ_HEADERS.code] ?? '',
      reason: text[DLQ_HEADERS.reason] ?? '',
      key: key ? Buffer.from(key) : null,
      headers: text,
      partition,
      offset,
      ...(this.options.keepRecords
        ? { envelope: { ...(await this.decode(this.options.codecs.deadLetter, value, headers)) } }
        : {}),
    };
    if (seen.source.topic !== this.options.topics.interactions) {
      this.otherDeadLetters.push(seen);
      return;
    }
    const at = position(seen.source.partition, seen.source.offset);
    const list = this.deadLetters.get(at);
    if (list) list.push(seen);
    else this.deadLetters.set(at, [seen]);
  }

  private decode<T>(codec: Codec<T>, value: Buffer, headers: Headers): Promise<T> {
    return this.options.framing.decode(codec, value, headers);
  }

  async caughtUp(): Promise<boolean> {
    const { topics } = this.options;
    for (const topic of [topics.interactions, topics.recommendations, topics.deadLetters]) {
      for (const { partition, high } of await this.admin.fetchTopicOffsets(topic)) {
        if ((this.next.get(`${topic}:${partition}`) ?? 0n) < BigInt(high)) return false;
      }
    }
    return true;
  }

  async waitForAccounting(expectedInputs: number, limits: WaitLimits): Promise<Accounting> {
    const deadline = Date.now() + limits.timeoutMs;
    let last: Accounting;
    for (;;) {
      last = account(this);
      if (last.inputs >= expectedInputs && last.missing.length === 0) return last;
      const failure = limits.failed?.();
      if (failure) throw new Error(`${failure}\naccounting so far: ${describeAccounting(last)}`);
      const now = Date.now();
      const stalled = limits.stallMs !== undefined && now - this.lastOutputAt > limits.stallMs;
      if (now > deadline || stalled) {
        const why = stalled
          ? `no output for ${limits.stallMs} ms`
          : `not accounted within ${limits.timeoutMs} ms`;
        throw new Error(
          `${why}: ${expectedInputs} inputs expected; ${describeAccounting(last)}` +
            (limits.diagnostics ? `\n${limits.diagnostics()}` : ''),
        );
      }
      await new Promise((r) => setTimeout(r, 250));
    }
  }

  stop(): Promise<void> {
    this.stopping ??= (async () => {
      await this.consumer.stop().catch(() => undefined);
      await this.consumer.disconnect().catch(() => undefined);
      await this.admin.disconnect().catch(() => undefined);
    })();
    return this.stopping;
  }
}

function toHeaders(headers: kafkajs.IHeaders | undefined): Headers {
  const out: Record<string, Buffer> = {};
  for (const [name, value] of Object.entries(headers ?? {})) {
    const last = Array.isArray(value) ? value[value.length - 1] : value;
    if (last !== undefined) out[name] = typeof last === 'string' ? Buffer.from(last) : last;
  }
  return out;
}

/** One input offset answered more than once, or by both kinds of output. */
export interface Duplicate {
  readonly partition: number;
  readonly offset: string;
  readonly eventId: string | null;
  /** Recommendations + dead letters for this input. */
  readonly answers: number;
}

export interface Accounting {
  /** Input records read from the interactions topic. */
  readonly inputs: number;
  /** Inputs answered by at least one recommendation. */
  readonly recommended: number;
  /** Inputs answered by at least one dead letter. */
  readonly deadLettered: number;
  /** Inputs with no answer at all (a loss, unless the pipeline is still working on them). */
  readonly missing: readonly InputRecord[];
  /** Inputs answered by both a recommendation and a dead letter. */
  readonly both: readonly InputRecord[];
  /** Inputs answered more than once, in input order per partition. */
  readonly duplicates: readonly Duplicate[];
  /** Answers beyond the first, summed over inputs. */
  readonly extraAnswers: number;
  /** Recommendations whose event id no input carries (and DLQ records naming no input position). */
  readonly strayRecommendations: number;
  readonly strayDeadLetters: number;
  /** Dead letters by code. */
  readonly deadLetterCodes: Readonly<Record<string, number>>;
}

/**
 * Matches every input offset with its answers. Event ids are unique per input record in these tests; if the
 * same event id sits at several offsets (a producer retry that the broker had appended), its
 * recommendations are shared out among them in offset order before any counts as a duplicate.
 */
export function account(
  collector: Pick<Collector, 'inputs' | 'recommendations' | 'deadLetters'>,
): Accounting {
  const byEventId = new Map<string, InputRecord[]>();
  const ordered = [...collector.inputs.values()].sort(
    (a, b) => a.partition - b.partition || compareOffsets(a.offset, b.offset),
  );
  for (const input of ordered) {
    if (input.eventId === null) continue;
    const list = byEventId.get(input.eventId);
    if (list) list.push(input);
    else byEventId.set(input.eventId, [input]);
  }
  const missing: InputRecord[] = [];
  const both: InputRecord[] = [];
  const duplicates: Duplicate[] = [];
  const codes: Record<string, number> = {};
  let recommended = 0;
  let deadLettered = 0;
  let extraAnswers = 0;
  for (const input of ordered) {
    const letters = collector.deadLetters.get(position(input.partition, input.offset))?.length ?? 0;
    let recs = 0;
    if (input.eventId !== null) {
      const total = collector.recommendations.get(input.eventId)?.length ?? 0;
      const sharing = byEventId.get(input.eventId)!;
      const index = sharing.indexOf(input);
      // Each sharer gets one; the last one also takes whatever is left over.
      recs = index === sharing.length - 1 ? Math.max(0, total - index) : total > index ? 1 : 0;
    }
    if (recs > 0) recommended++;
    if (letters > 0) deadLettered++;
    if (recs + letters === 0) missing.push(input);
    if (recs > 0 && letters > 0) both.push(input);
    if (recs + letters > 1) {
      duplicates.push({
        partition: input.partition,
        offset: input.offset,
        eventId: input.eventId,
        answers: recs + letters,
      });
      extraAnswers += recs + letters - 1;
    }
  }
  let strayRecommendations = 0;
  for (const [eventId, list] of collector.recommendations)
    if (!byEventId.has(eventId)) strayRecommendations += list.length;
  let strayDeadLetters = 0;
  for (const [at, list] of collector.deadLetters) {
    if (!collector.inputs.has(at)) strayDeadLetters += list.length;
    for (const letter of list) codes[letter.code] = (codes[letter.code] ?? 0) + 1;
  }
  return {
    inputs: ordered.length,
    recommended,
    deadLettered,
    missing,
    both,
    duplicates,
    extraAnswers,
    strayRecommendations,
    strayDeadLetters,
    deadLetterCodes: codes,
  };
}

export function compareOffsets(a: string, b: string): number {
  const x = BigInt(a);
  const y = BigInt(b);
  return x < y ? -1 : x > y ? 1 : 0;
}

/** What a finished run must show: every input answered exactly one way, duplicates within a bound. */
export interface AccountingExpectation {
  readonly inputs?: number;
  /** With `deadLetterCodes`: how many inputs were garbage, and the one DLQ reason they must carry. */
  readonly deadLettered?: number;
  readonly deadLetterCodes?: readonly string[];
  readonly maxExtraAnswers: number;
}

export function assertAccountedFor(a: Accounting, expect: AccountingExpectation): void {
  const why = describeAccounting(a);
  if (expect.inputs !== undefined) assert.equal(a.inputs, expect.inputs, why);
  if (expect.deadLettered !== undefined) {
    assert.equal(a.deadLettered, expect.deadLettered, why);
    assert.equal(a.recommended, a.inputs - expect.deadLettered, why);
  }
  if (expect.deadLetterCodes) assert.deepEqual(Object.keys(a.deadLetterCodes), expect.deadLetterCodes, why);
  assert.equal(a.missing.length, 0, why);
  assert.equal(a.both.length, 0, why);
  assert.equal(a.strayRecommendations + a.strayDeadLetters, 0, why);
  assert.ok(a.extraAnswers <= expect.maxExtraAnswers, `${a.extraAnswers} duplicates (bound ${expect.maxExtraAnswers}): ${why}`);
}

/** One line for logs and assertion messages. */
export function describeAccounting(a: Accounting): string {
  const sample = (list: readonly { partition: number; offset: string }[]): string =>
    list.length
      ? ` e.g. ${list
          .slice(0, 5)
          .map((r) => position(r.partition, r.offset))
          .join(', ')}`
      : '';
  return (
    `${a.inputs} inputs: ${a.recommended} recommended, ${a.deadLettered} dead-lettered ${JSON.stringify(a.deadLetterCodes)}, ` +
    `${a.missing.length} missing${sample(a.missing)}, ${a.both.length} answered both ways${sample(a.both)}, ` +
    `${a.duplicates.length} duplicated inputs (${a.extraAnswers} extra answers)${sample(a.duplicates)}, ` +
    `${a.strayRecommendations} stray recommendations, ${a.strayDeadLetters} stray dead letters`
  );
}

/**
 * Duplicated input offsets grouped per partition as [first, last] ranges: where the re-processing happened.
 * A failure re-processes a contiguous stretch starting at the partition's committed offset; duplicates that
 * are spread out would mean something else is wrong.
 */
export function duplicateRanges(a: Accounting): Map<number, { first: bigint; last: bigint; count: number }> {
  const out = new Map<number, { first: bigint; last: bigint; count: number }>();
  for (const d of a.duplicates) {
    const offset = BigInt(d.offset);
    const range = out.get(d.partition);
    if (!range) out.set(d.partition, { first: offset, last: offset, count: 1 });
    else {
      if (offset < range.first) range.first = offset;
      if (offset > range.last) range.last = offset;
      range.count++;
    }
  }
  return out;
}
