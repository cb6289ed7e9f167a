import type kafkajs from 'kafkajs';
import { FatalError, TransientError, type StarstreamError } from '../../errors/index.ts';
import type { Logger } from '../../logging/logger.ts';
import { KeyedLock } from '../../util/keyed-lock.ts';
import type { ConsumedPosition, OutgoingRecord, TransactionalProducer } from '../port.ts';
import { classifyKafkaError } from './errors.ts';
import { MAX_REQUEST_BYTES, bySize, toTopicMessages } from './producer.ts';

/** kafkajs error types that mean another producer with this transactional id took over (a newer epoch). */
const FENCED_TYPES: ReadonlySet<string> = new Set(['PRODUCER_FENCED', 'INVALID_PRODUCER_EPOCH', 'INVALID_PRODUCER_ID_MAPPING']);

/** The transactional id of one consumed partition: stable across restarts and instances (see the class). */
export function transactionalIdOf(consumed: Pick<ConsumedPosition, 'groupId' | 'topic' | 'partition'>): string {
  return `starstream.${consumed.groupId}.${consumed.topic}.${consumed.partition}`;
}

/**
 * Exactly-once outputs on Kafka (`eventLog.kafka.exactlyOnce`): each send is one transaction holding the
 * batch's records and its consumed offset (`sendOffsets`), committed, or aborted when anything in it fails.
 *
 * Fencing rule: one transactional producer per consumed partition, id `starstream.<groupId>.<topic>.<partition>`
 * (`transactionalIdOf`), the same in every instance and after every restart. kafkajs does not send the
 * consumer group's generation with its offsets (KIP-447), so fencing comes from the id, as in Kafka Streams'
 * first exactly-once: when a partition moves, its new owner's first transaction initializes the id, which
 * bumps its epoch and aborts whatever the previous owner left open; the previous owner's later commit is
 * refused (`PRODUCER_FENCED`). A fenced producer is dropped and the send rejects as transient: the batch is
 * abandoned if the partition has moved (the consumer sees it revoked), else retried with a new producer,
 * which fences the other in turn. Producers are made on the first send of a partition and kept until
 * `close()` (at most one per partition of the input topics).
 *
 * An abort that fails, or a commit whose outcome is unknown, also drops the producer: the next one for the id
 * makes the broker finish that transaction first (commit if it was prepared, else abort). Only in the second
 * case can the send reject although the transaction committed; the redelivered batch then publishes again
 * (a window as narrow as a lost EndTxn answer after kafkajs's retries).
 *
 * Readers with read_committed stop at the first open transaction of a partition (the last stable offset): a
 * process killed with a transaction open holds back the output partitions it wrote to until the next owner of
 * its input partition initializes the id (after the group's session timeout) or the transaction times out
 * (`transactionTimeout`, `config.ts`).
 */
export class KafkaTransactionalProducer implements TransactionalProducer {
  private readonly producers = new Map<string, kafkajs.Producer>();
  private readonly lock = new KeyedLock();
  private readonly inFlight = new Set<Promise<unknown>>();
  private closing: Promise<void> | null = null;

  constructor(
    private readonly create: (transactionalId: string) => kafkajs.Producer,
    private readonly logger: Logger,
  ) {}

  sendWithOffsets(records: readonly OutgoingRecord[], consumed: ConsumedPosition): Promise<void> {
    if (this.closing) return Promise.reject(new FatalError('EVENT_LOG_CLOSED', 'send on a closed transactional producer'));
    const id = transactionalIdOf(consumed);
    const sent = this.lock.run([id], () => this.transact(id, records, consumed));
    this.inFlight.add(sent);
    void sent.catch(() => undefined).finally(() => this.inFlight.delete(sent));
    return sent;
  }

  close(): Promise<void> {
    this.closing ??= (async () => {
      await Promise.allSettled([...this.inFlight]);
      await Promise.all([...this.producers.values()].map((p) => p.disconnect().catch(() => undefined)));
      this.producers.clear();
    })();
    return this.closing;
  }

  private async transact(id: string, records: readonly OutgoingRecord[], consumed: ConsumedPosition): Promise<void> {
    let producer: kafkajs.Producer;
    try {
      producer = await this.producer(id);
    } catch (err) {
      throw classifyKafkaError(err);
    }
    let transaction: kafkajs.Transaction;
    try {
      // The first transaction of a producer initializes its id (InitProducerId), fencing older holders.
      transaction = await producer.transaction();
    } catch (err) {
      throw this.failed(id, producer, err);
    }
    let committing = false;
    try {
      for (const slice of bySize(records, MAX_REQUEST_BYTES)) {
        await transaction.sendBatch({ topicMessages: toTopicMessages(slice), acks: -1 });
      }
      await transaction.sendOffsets({
        consumerGroupId: consumed.groupId,
        topics: [{ topic: consumed.topic, partitions: [{ partition: consumed.partition, offset: consumed.nextOffset }] }],
      });
      committing = true;
      await transaction.commit();
    } catch (err) {
      if (!committing) {
        try {
          await transaction.abort();
        } catch (abortErr) {
          this.logger.warn({ code: classifyKafkaError(abortErr).code, transactionalId: id }, 'transaction abort failed; dropping its producer');
          await this.drop(id, producer);
        }
      }
      throw this.failed(id, producer, err, committing);
    }
  }

  /** Classifies a transaction's failure; drops the producer when it is fenced or the outcome unknown. */
  private failed(id: string, producer: kafkajs.Producer, err: unknown, committing = false): StarstreamError {
    const type = fencedType(err);
    if (type !== null) {
      this.logger.warn({ code: `KAFKA_${type}`, transactionalId: id }, 'transactional producer fenced: another owner of the partition took over');
      void this.drop(id, producer);
      return new TransientError('KAFKA_PRODUCER_FENCED', `transactional id ${id} is used by a newer producer (${type})`, { cause: err });
    }
    const classified = classifyKafkaError(err);
    // After a failed commit the producer's state is not known to be clean: the next one for the id settles it.
    if (committing) void this.drop(id, producer);
    return classified;
  }

  private async producer(id: string): Promise<kafkajs.Producer> {
    let producer = this.producers.get(id);
    if (!producer) {
      producer = this.create(id);
      this.producers.set(id, producer);
      try {
        await producer.connect();
      } catch (err) {
        this.producers.delete(id);
        throw err;
      }
    }
    return producer;
  }

  private async drop(id: string, producer: kafkajs.Producer): Promise<void> {
    if (this.producers.get(id) === producer) this.producers.delete(id);
    await producer.disconnect().catch(() => undefined);
  }
}

/** The fencing error type in `err` or its causes (kafkajs wraps a non-retriable answer in KafkaJSNonRetriableError); null when none. */
function fencedType(err: unknown): string | null {
  let at: unknown = err;
  for (let depth = 0; depth < 5 && typeof at === 'object' && at !== null; depth++) {
    const e = at as { type?: unknown; cause?: unknown; originalError?: unknown };
    if (typeof e.type === 'string' && FENCED_TYPES.has(e.type)) return e.type;
    at = e.cause ?? e.originalError;
  }
  return null;
}
