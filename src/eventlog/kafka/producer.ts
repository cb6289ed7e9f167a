import type kafkajs from 'kafkajs';
import { FatalError } from '../../errors/index.ts';
import type { EventProducer, OutgoingRecord } from '../port.ts';
import { classifyKafkaError } from './errors.ts';

/**
 * The port's producer on a kafkajs idempotent producer. One `send` is one `sendBatch` with acks=all: it
 * resolves when every in-sync replica has every record. Connects on first use; `close()` waits for the sends
 * in flight, then disconnects.
 */
export class KafkaEventProducer implements EventProducer {
  private connected: Promise<void> | null = null;
  private closing: Promise<void> | null = null;
  private readonly inFlight = new Set<Promise<unknown>>();

  constructor(private readonly producer: kafkajs.Producer) {}

  send(records: readonly OutgoingRecord[]): Promise<void> {
    if (this.closing)
      return Promise.reject(new FatalError('EVENT_LOG_CLOSED', 'send on a closed Kafka producer'));
    const sent = this.sendNow(records);
    this.inFlight.add(sent);
    void sent.catch(() => undefined).finally(() => this.inFlight.delete(sent));
    return sent;
  }

  close(): Promise<void> {
    this.closing ??= (async () => {
      await Promise.allSettled([...this.inFlight]);
      if (this.connected) await this.producer.disconnect().catch(() => undefined);
    })();
    return this.closing;
  }

  private async sendNow(records: readonly OutgoingRecord[]): Promise<void> {
    if (records.length === 0) return;
    try {
      await this.connect();
      // Slices in order, one request each: a whole consumed batch of outputs can exceed the broker's request
      // limit (message.max.bytes, 1 MiB by default), and a refused request would be redelivered forever.
      for (const slice of bySize(records, MAX_REQUEST_BYTES)) {
        await this.producer.sendBatch({ topicMessages: toTopicMessages(slice), acks: -1 });
      }
    } catch (err) {
      throw classifyKafkaError(err);
    }
  }

  private connect(): Promise<void> {
    if (!this.connected) {
      this.connected = this.producer.connect();
      // A failed connect is not remembered: the next send tries again.
      this.connected.catch(() => (this.connected = null));
    }
    return this.connected;
  }
}

/** Bytes of records per produce request; half the broker's default limit leaves room for framing. */
export const MAX_REQUEST_BYTES = 512 * 1024;

/** Consecutive slices of `records` of at most `maxBytes` each (a single larger record gets a slice of its own). */
export function bySize(records: readonly OutgoingRecord[], maxBytes: number): OutgoingRecord[][] {
  const slices: OutgoingRecord[][] = [];
  let current: OutgoingRecord[] = [];
  let bytes = 0;
  for (const record of records) {
    const size = recordBytes(record);
    if (current.length > 0 && bytes + size > maxBytes) {
      slices.push(current);
      current = [];
      bytes = 0;
    }
    current.push(record);
    bytes += size;
  }
  if (current.length > 0) slices.push(current);
  return slices;
}

function recordBytes(record: OutgoingRecord): number {
  let size = record.value.length + (record.key ? Buffer.byteLength(record.key) : 0) + 64;
  for (const [name, value] of Object.entries(record.headers ?? {})) size += name.length + Buffer.byteLength(value);
  return size;
}

/** Groups by topic, keeping the callers' order inside each topic (and so per key). */
export function toTopicMessages(records: readonly OutgoingRecord[]): kafkajs.TopicMessages[] {
  const byTopic = new Map<string, kafkajs.Message[]>();
  for (const record of records) {
    let messages = byTopic.get(record.topic);
    if (!messages) byTopic.set(record.topic, (messages = []));
    const message: kafkajs.Message = { key: record.key, value: record.value };
    if (record.headers) message.headers = { ...record.headers };
    messages.push(message);
  }
  return [...byTopic].map(([topic, messages]) => ({ topic, messages }));
}
