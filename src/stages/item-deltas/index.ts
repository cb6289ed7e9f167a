import { isSighting } from '../../store/item-merge.ts';
import type { SourcePosition } from '../../domain/events.ts';
import { sourceKey, type ItemDelta, type VectorStore } from '../../store/port.ts';

/**
 * Item-delta routing: one writer per item in a shared store (`store.itemWrites = routed`).
 *
 * Why: users are partitioned (interactions are keyed by user), items are not: every instance learns deltas for
 * every item. The embedded store applies deltas atomically in-process, but Qdrant has no atomic increment, so
 * its adapter does read → merge → upsert, and two processes doing that to one item at once lose an update.
 *
 * The scheme, in three steps:
 *
 * 1. The interaction processor applies user profiles itself but not its item deltas: `routeItemDeltas` groups
 *    the batch's deltas by item into `ItemDeltaMessage`s, which the runner sends to the `item-deltas` topic
 *    keyed by item id, acknowledged together with the batch's recommendations, before the interaction offsets
 *    commit (at-least-once, like every output).
 * 2. Every instance runs a consumer of the item-deltas topic in its own group (`${groupId}.item-deltas`). Kafka
 *    gives each partition, hence each item, to exactly one member at a time, and a member handles one batch
 *    of a partition at a time: one writer per item, whatever the number of instances.
 * 3. The `ItemDeltaWriter` takes one consumed batch, drops changes it has already applied (`RecentIds`),
 *    merges the changes per item (`mergeItemDeltas`), applies them in one `applyItemDeltas` call (one read and
 *    one write per item on Qdrant), and only then lets the consumer commit.
 *
 * Consistency: item state is eventually consistent. The store is behind the learned state by the item-deltas
 * consumer's lag (usually one batch, milliseconds on the embedded log); a processor reads item profiles as of
 * the deltas applied so far. Evidence counts and co-occurrence lag by that much, and BPR steps may read an item
 * vector that misses the last batches' steps (asynchronous SGD, which tolerates such staleness). Two batches
 * that both see a new item before the writer has created it both send an `initialVector`; the first applied
 * seeds the item and the other's vector step is added to it (`item-merge.ts`).
 *
 * Duplicates (at-least-once delivery, exactly-once effect): a change is identified by its source (interactions
 * topic, partition, offset) and item. A change is re-sent when a processor's batch is redelivered after its
 * deltas were produced but before its offsets committed, and re-read when a writer fails after applying but
 * before its commit. On a store that keeps source positions with each item (the tiered store over Qdrant:
 * `itemPositions`, `applySourcedItemDeltas`), every item point carries, per source partition, the highest
 * offset whose change it holds, written in the same point as the state: a change at or below it is dropped,
 * whichever process applied it and whenever it crashed. Changes of one source partition reach an item in
 * offset order (one producer per source partition, sending batch after batch; the item's record key picks one
 * item-deltas partition), so this is exact. Besides, the writer remembers the ids of the last `dedupeWindow`
 * changes it applied, which covers stores without positions while one writer holds the partition.
 *
 * Lost changes: the processor writes its users (durable, with their positions) before it sends the batch's
 * deltas. A crash between the two leaves users that hold events whose deltas never reached the log; the
 * redelivered events are not learned again, so they send the deltas they made the first time instead: from
 * memory after a failed publish (`UnsentDeltas`), or from the user's `outbox` (written with the user, read by
 * `readOutboxes`) in a new process. See `outbox.ts`.
 */

/** Raises `positions[itemId][key]` to `offset`. */
function raise(positions: Map<string, Map<string, number>>, itemId: string, key: string, offset: number): void {
  let ofItem = positions.get(itemId);
  if (!ofItem) positions.set(itemId, (ofItem = new Map()));
  if (offset > (ofItem.get(key) ?? -1)) ofItem.set(key, offset);
}

/** One change to an item, with the interaction that produced it. */
export interface SourcedChange {
  /** Offset of the interaction (decimal string, as on the log). */
  readonly sourceOffset: string;
  readonly delta: ItemDelta;
}

/** The changes to one item learned from one batch of one interactions partition: one item-deltas record. */
export interface ItemDeltaMessage {
  readonly itemId: string;
  readonly sourceTopic: string;
  readonly sourcePartition: number;
  /** In the order they were learned. */
  readonly changes: readonly SourcedChange[];
}

/** The item deltas that learning one interaction produced. */
export interface LearnedDeltas {
  readonly source: SourcePosition;
  readonly deltas: readonly ItemDelta[];
}

/**
 * The item deltas of events learned on the profile path whose outputs are not known to be published yet, by
 * source position. With routed writes the users are written before the outputs (the item deltas among them)
 * are sent, so a failed publish or an aborted transaction leaves users that hold the batch and a writer that
 * may never have got its deltas: the redelivered events are not learned again (`learnEventOnce`), and send the
 * deltas they made the first time instead (same change ids, so a writer that applied them drops them). In this
 * process's memory only: a crash between the users' write and the send loses those events' item changes.
 * Bounded by `capacity` events (the oldest forgotten first), for batches never redelivered here (a rebalance).
 */
export class UnsentDeltas {
  private readonly bySource = new Map<string, LearnedDeltas>();

  constructor(readonly capacity: number) {}

  /** Remembers what these events made, until `published`. */
  add(learned: readonly LearnedDeltas[]): void {
    for (const entry of learned) {
      const key = positionKey(entry.source);
      this.bySource.delete(key);
      this.bySource.set(key, entry);
    }
    for (const key of this.bySource.keys()) {
      if (this.bySource.size <= this.capacity) break;
      this.bySource.delete(key);
    }
  }

  /** What the event at `source` made when it was learned, while its outputs are not known to be published. */
  get(source: SourcePosition): LearnedDeltas | undefined {
    return this.bySource.get(positionKey(source));
  }

  /** These events' outputs are published: their deltas reached the log. */
  published(learned: readonly LearnedDeltas[]): void {
    for (const entry of learned) if (this.bySource.get(positionKey(entry.source)) === entry) this.bySource.delete(positionKey(entry.source));
  }

  get size(): number {
    return this.bySource.size;
  }
}

function positionKey(source: SourcePosition): string {
  return `${source.topic}:${source.partition}:${source.offset}`;
}

/**
 * Groups a batch's deltas into one message per (source partition, item), in order of first appearance. The
 * deltas one interaction produced for one item are merged into one change (they share the event time).
 */
export function routeItemDeltas(learned: readonly LearnedDeltas[]): ItemDeltaMessage[] {
  const messages = new Map<
    string,
    { itemId: string; sourceTopic: string; sourcePartition: number; changes: SourcedChange[] }
  >();
  for (const { source, deltas } of learned) {
    for (const [itemId, ofItem] of groupByItem(deltas)) {
      const key = `${source.topic}:${source.partition}:${itemId}`;
      let message = messages.get(key);
      if (!message) {
        message = { itemId, sourceTopic: source.topic, sourcePartition: source.partition, changes: [] };
        messages.set(key, message);
      }
      for (const delta of mergeSameTime(ofItem)) message.changes.push({ sourceOffset: source.offset, delta });
    }
  }
  return [...messages.values()];
}

/**
 * The id of each change of `message`, for de-duplication: source position and item, plus the change's rank
 * among the message's changes with the same offset (0 unless one interaction's deltas could not be merged).
 */
export function changeIds(message: ItemDeltaMessage): string[] {
  const seen = new Map<string, number>();
  return message.changes.map((c) => {
    const n = seen.get(c.sourceOffset) ?? 0;
    seen.set(c.sourceOffset, n + 1);
    return `${message.sourceTopic}:${message.sourcePartition}:${c.sourceOffset}:${n}:${message.itemId}`;
  });
}

/** True when applying `b` right after `a` equals applying one merged delta (`mergeTwo`). */
export function canMergeTwo(a: ItemDelta, b: ItemDelta): boolean {
  if (a.itemId !== b.itemId || a.atMs !== b.atMs) return false;
  // Two co-occurrence maps summed would be cut once, where the pair applied in turn may cut between them.
  if (a.cooccurrence && b.cooccurrence) return false;
  if (!a.seenBy || !b.seenBy) return true;
  return a.seenBy.id === b.seenBy.id && a.seenBy.atMs === b.seenBy.atMs;
}

/**
 * One delta with the effect of `a` then `b` (`canMergeTwo` must hold): vector steps and interactions added,
 * the co-occurrence counts of the one that has them; `a`'s `initialVector` kept, since `b`'s could never apply
 * (`a` is a sighting, so after it the item is no longer unseen). Equal to applying both up to float rounding.
 */
export function mergeTwo(a: ItemDelta, b: ItemDelta): ItemDelta {
  const vectorDelta = addVectors(a.vectorDelta, b.vectorDelta);
  const cooccurrence = a.cooccurrence ?? b.cooccurrence;
  const seenBy = a.seenBy ?? b.seenBy;
  const interactions = (a.interactions ?? 0) + (b.interactions ?? 0);
  return {
    itemId: a.itemId,
    atMs: a.atMs,
    ...(a.initialVector ? { initialVector: a.initialVector } : {}),
    ...(vectorDelta ? { vectorDelta } : {}),
    ...(seenBy ? { seenBy } : {}),
    ...(interactions > 0 ? { interactions } : {}),
    ...(cooccurrence ? { cooccurrence } : {}),
  };
}

/**
 * Merges a sequence of deltas to the items they touch, in order, into fewer deltas with the same effect (up
 * to float rounding) when applied in the returned order. Per item:
 *
 * - the item's first delta carries the sum of all its vector steps: vector additions commute, and the first
 *   delta alone decides whether `initialVector` seeds the item;
 * - co-occurrence counts are never summed across deltas: each delta's map is applied in its turn, so the cut
 *   (`item-merge.ts` trims a list at 1.25× its limit) falls where it falls for the deltas one by one, whatever
 *   the batch boundaries. A sum cut once would make the kept list depend on where a batch ended, and a crash
 *   moves batch boundaries (the writer's batches are whatever the log hands it);
 * - deltas that count (`interactions > 0` or a `seenBy`) keep their own event time, which popularity and the
 *   audience need; adjacent ones at the same time with a compatible `seenBy` are merged (`mergeTwo`);
 * - deltas left with nothing but an event time are dropped, except those that hold the batch's earliest and
 *   latest time (first/last seen are a min and a max).
 *
 * The learner emits, per interaction, one counting delta and up to `negatives` + `cooccurrenceWindow` vector
 * or co-occurrence ones, so a batch shrinks to about one delta per interaction plus one or two per item.
 */
export function mergeItemDeltas(deltas: readonly ItemDelta[]): ItemDelta[] {
  const out: ItemDelta[] = [];
  for (const ofItem of groupByItem(deltas).values()) out.push(...mergeOneItem(ofItem));
  return out;
}

function mergeOneItem(deltas: readonly ItemDelta[]): ItemDelta[] {
  if (deltas.length === 1) return [deltas[0]!];
  // Vector-only deltas before the item's first sighting stay apart, summed, ahead of the rest: applied one by
  // one, the first sighting's `initialVector` overwrites them on an unseen item and adds to them on a seen one.
  const f = deltas.findIndex(isSighting);
  if (f > 0) {
    const before = deltas.slice(0, f);
    const ahead: ItemDelta = { itemId: before[0]!.itemId, atMs: before[0]!.atMs, vectorDelta: before.reduce<Float32Array | undefined>((sum, d) => addVectors(sum, d.vectorDelta), undefined)! };
    return [ahead, ...mergeFromSighting(deltas.slice(f))];
  }
  return mergeFromSighting(deltas);
}

/** Merges deltas of one item of which the first is a sighting (or none is: then all are vector-only). */
function mergeFromSighting(deltas: readonly ItemDelta[]): ItemDelta[] {
  const first = deltas[0]!;
  if (deltas.length === 1) return [first];
  let vectorDelta: Float32Array | undefined;
  // First/last seen move only with sightings (a sampled negative's vector-only delta is none).
  let minMs = Infinity;
  let maxMs = -Infinity;
  for (const d of deltas) {
    vectorDelta = addVectors(vectorDelta, d.vectorDelta);
    if (!isSighting(d)) continue;
    minMs = Math.min(minMs, d.atMs);
    maxMs = Math.max(maxMs, d.atMs);
  }
  const carrier: ItemDelta = {
    ...stripSums(first),
    ...(vectorDelta ? { vectorDelta } : {}),
    ...(first.cooccurrence ? { cooccurrence: first.cooccurrence } : {}),
  };
  // Later `initialVector`s never apply: the carrier is a sighting, so the item is no longer unseen after it.
  const rest = deltas
    .slice(1)
    .filter((d) => counts(d) || d.cooccurrence !== undefined)
    .map(({ initialVector: _i, vectorDelta: _v, ...d }) => d);
  const out = mergeSameTime([carrier, ...rest]);
  const covered = (ms: number): boolean => out.some((d) => d.atMs === ms && isSighting(d));
  if (minMs !== Infinity && !covered(minMs)) out.push({ itemId: first.itemId, atMs: minMs });
  if (maxMs !== -Infinity && !covered(maxMs)) out.push({ itemId: first.itemId, atMs: maxMs });
  return out;
}

function counts(d: ItemDelta): boolean {
  return (d.interactions ?? 0) > 0 || d.seenBy !== undefined;
}

function stripSums(d: ItemDelta): ItemDelta {
  const { vectorDelta: _v, cooccurrence: _c, ...rest } = d;
  return rest;
}

/** Merges adjacent deltas that `canMergeTwo`; order kept. */
function mergeSameTime(deltas: readonly ItemDelta[]): ItemDelta[] {
  const out: ItemDelta[] = [];
  for (const d of deltas) {
    const last = out[out.length - 1];
    if (last && canMergeTwo(last, d)) out[out.length - 1] = mergeTwo(last, d);
    else out.push(d);
  }
  return out;
}

function groupByItem(deltas: readonly ItemDelta[]): Map<string, ItemDelta[]> {
  const byItem = new Map<string, ItemDelta[]>();
  for (const d of deltas) {
    const list = byItem.get(d.itemId);
    if (list) list.push(d);
    else byItem.set(d.itemId, [d]);
  }
  return byItem;
}

function addVectors(a: Float32Array | undefined, b: Float32Array | undefined): Float32Array | undefined {
  if (!b) return a;
  if (!a) return Float32Array.from(b);
  const sum = Float32Array.from(a);
  for (let i = 0; i < sum.length; i++) sum[i]! += b[i] ?? 0;
  return sum;
}

/**
 * A bounded set of the most recently added ids; the oldest are forgotten first. A ring of ids beside the set
 * (evicting through a `Set`'s own iterator is not O(1): V8 walks over the deleted entries at its front).
 */
export class RecentIds {
  private readonly ids = new Set<string>();
  private readonly ring: (string | undefined)[];
  private next = 0;

  constructor(readonly capacity: number) {
    if (!(Number.isInteger(capacity) && capacity >= 0))
      throw new RangeError(`capacity ${capacity} is not an integer >= 0`);
    this.ring = new Array<string | undefined>(capacity);
  }

  get size(): number {
    return this.ids.size;
  }

  has(id: string): boolean {
    return this.ids.has(id);
  }

  add(id: string): void {
    if (this.capacity === 0 || this.ids.has(id)) return;
    const evicted = this.ring[this.next];
    if (evicted !== undefined) this.ids.delete(evicted);
    this.ring[this.next] = id;
    this.next = (this.next + 1) % this.capacity;
    this.ids.add(id);
  }
}

export interface ItemDeltaWriterOptions {
  /** Ids of recently applied changes remembered to skip repeats; 0 = no de-duplication. */
  readonly dedupeWindow: number;
  /** Throws `BadInputError` for a delta the store would refuse (injected: `validateItemDelta`). */
  readonly validate: (delta: ItemDelta) => void;
}

/** What one `write` did, for logs, metrics and tests. */
export interface ItemDeltaWrite {
  /** Changes received. */
  readonly changes: number;
  /** Changes skipped as already applied (or repeated within the batch). */
  readonly duplicates: number;
  /** Deltas handed to the store after merging. */
  readonly applied: number;
}

/** Default `dedupeWindow`: about 7 batches of 500 interactions at the learner's ~14 changes each. */
export const DEFAULT_DEDUPE_WINDOW = 50_000;

/**
 * The single writer of the items it is given (see the module doc): de-duplicates, merges and applies one
 * consumed batch of item-deltas messages. Not safe for concurrent `write` calls that share items; the
 * consumer's one-batch-per-partition-at-a-time rule and keying by item guarantee there are none.
 */
export class ItemDeltaWriter {
  private readonly recent: RecentIds;

  constructor(
    private readonly store: VectorStore,
    private readonly options: ItemDeltaWriterOptions,
  ) {
    this.recent = new RecentIds(options.dedupeWindow);
  }

  /**
   * Throws `BadInputError` unless every change of `message` is a valid delta for its item; the caller
   * dead-letters such a message instead of letting it fail (and be redelivered) forever.
   */
  check(message: ItemDeltaMessage): void {
    for (const { delta } of message.changes) this.options.validate(delta);
  }

  /**
   * Applies the changes of `messages` not applied before, merged, in one store call. Resolves once the store
   * has them: only then may the consumed batch commit. A rejected write remembers nothing, so the redelivered
   * batch is applied in full.
   */
  async write(messages: readonly ItemDeltaMessage[]): Promise<ItemDeltaWrite> {
    const store = this.store;
    // A store that keeps positions with each item says what its durable states hold: the exact de-duplication.
    const sourced = store.itemPositions && store.applySourcedItemDeltas ? store : null;
    const held = sourced ? await sourced.itemPositions!(messages.map((m) => m.itemId)) : null;
    const positions = new Map<string, Map<string, number>>();
    const fresh: ItemDelta[] = [];
    const ids: string[] = [];
    const inBatch = new Set<string>();
    let changes = 0;
    for (const message of messages) {
      const messageIds = changeIds(message);
      const key = sourceKey(message.sourceTopic, message.sourcePartition);
      const heldOffset = held?.get(message.itemId)?.get(key) ?? -1;
      message.changes.forEach((change, i) => {
        changes++;
        const id = messageIds[i]!;
        const offset = Number(change.sourceOffset);
        if (offset <= heldOffset || this.recent.has(id) || inBatch.has(id)) return;
        inBatch.add(id);
        ids.push(id);
        fresh.push(change.delta);
        raise(positions, message.itemId, key, offset);
      });
    }
    const merged = mergeItemDeltas(fresh);
    if (merged.length > 0) {
      if (sourced) await sourced.applySourcedItemDeltas!(merged, positions);
      else await store.applyItemDeltas(merged);
    }
    for (const id of ids) this.recent.add(id);
    return { changes, duplicates: changes - fresh.length, applied: merged.length };
  }
}
