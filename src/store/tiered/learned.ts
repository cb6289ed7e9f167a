import type { SourcePosition } from '../../domain/events.ts';
import type { CollaborativeState } from '../embedded/state/collaborative-state.ts';
import { sourceKey, type LearnedPositions, type LearningState } from '../port.ts';

/**
 * Idempotent learning for the store written per batch (issue 16): every user and item point in Qdrant carries
 * the source positions whose learning it holds (`LearnedPositions`, written in the same upsert as the state,
 * so they are exactly as durable as it is). A batch made durable and then not committed (a crash before the
 * offset commit) is redelivered to a process that reads those states back; the guard below then drops, event
 * by event, every change to a user or item whose state already holds the event, so nothing is learned twice.
 *
 * Why positions per entity rather than one per batch: Qdrant has no transaction over two collections, so a
 * crash can leave one collection written and not the other. The tiered store writes items first and users
 * only once the items are acknowledged (`TieredStore.writeLive`), so a user holding an event implies its items
 * hold it; an item may hold an event its user does not (the crash fell between the two writes), and then the
 * user's half is learned again and the item's dropped. Users are owned by partition (interactions are keyed by
 * user id), so a user has one position; an item one per partition whose events touched it. This is the
 * `routed` mode's de-duplication by source position (`stages/item-deltas`: a change is identified by source
 * topic, partition and offset), kept with the state instead of in a writer's memory, so it survives the crash.
 */

/** The positions every held user and item state carries, as Qdrant holds them (what the guard checks). */
export class PositionBook {
  private readonly users = new Map<string, LearnedPositions>();
  private readonly items = new Map<string, LearnedPositions>();
  /**
   * Per source partition, at least the highest position any entry holds (it never falls): events above it
   * need no lookup, which is every event of the steady state.
   */
  private readonly highest = new Map<string, number>();

  /** Replaces an entry's positions with the ones its durable state carries (a read, or a write of them). */
  setUser(id: string, learned: LearnedPositions | undefined): void {
    this.set(this.users, id, learned);
  }

  setItem(id: string, learned: LearnedPositions | undefined): void {
    this.set(this.items, id, learned);
  }

  user(id: string): LearnedPositions | undefined {
    return this.users.get(id);
  }

  item(id: string): LearnedPositions | undefined {
    return this.items.get(id);
  }

  forgetUser(id: string): void {
    this.users.delete(id);
  }

  /** At least the highest position of `key` any entry holds; -1 when none. */
  highestOf(key: string): number {
    return this.highest.get(key) ?? -1;
  }

  /** Keeps `learned` itself: every map handed here is a fresh one nothing changes afterwards (`raised`, a read). */
  private set(book: Map<string, LearnedPositions>, id: string, learned: LearnedPositions | undefined): void {
    if (!learned || learned.size === 0) {
      book.delete(id);
      return;
    }
    book.set(id, learned);
    for (const [key, offset] of learned) if (offset > (this.highest.get(key) ?? -1)) this.highest.set(key, offset);
  }
}

/** `held` with `batch`'s positions laid over it (the larger per source partition); undefined when both are empty. */
export function raised(held: LearnedPositions | undefined, batch: ReadonlyMap<string, number>): LearnedPositions | undefined {
  if (batch.size === 0) return held;
  const out = new Map(held ?? []);
  for (const [key, offset] of batch) if (offset > (out.get(key) ?? -1)) out.set(key, offset);
  return out;
}

/**
 * The learning state a tiered live batch hands the learner: the hot tier's typed state, with every change to
 * a user or item whose durable state already holds the current event dropped (`begin` names the event). A
 * user that holds it is read through a scratch copy of its vector, so the BPR steps still move the items that
 * do not hold it. Events above every held position (the steady state) pass straight through.
 */
export class GuardedState implements LearningState {
  /** Per source partition, the highest offset `begin` saw in this batch: what the batch's writes hold. */
  readonly batchPositions = new Map<string, number>();
  /** The current event's source partition and its `sourceKey`, built once per partition rather than per event. */
  private topic = '';
  private partition = -1;
  private key = '';
  private offset = -1;
  private guarded = false;
  private userHolds = false;
  private readonly scratch: Float32Array;

  constructor(
    private readonly state: CollaborativeState,
    private readonly book: PositionBook,
  ) {
    this.scratch = new Float32Array(state.dimension);
  }

  get dimension(): number {
    return this.state.dimension;
  }

  /** The event about to be learned; true when its user's durable state already holds it. */
  begin(source: SourcePosition, userId: string): boolean {
    if (source.partition !== this.partition || source.topic !== this.topic) {
      this.topic = source.topic;
      this.partition = source.partition;
      this.key = sourceKey(source.topic, source.partition);
    }
    this.offset = Number(source.offset);
    if (this.offset > (this.batchPositions.get(this.key) ?? -1)) this.batchPositions.set(this.key, this.offset);
    this.guarded = this.offset <= this.book.highestOf(this.key);
    this.userHolds = this.guarded && (this.book.user(userId)?.get(this.key) ?? -1) >= this.offset;
    return this.userHolds;
  }

  user(userId: string, init: (vector: Float32Array) => void): number {
    return this.state.user(userId, init);
  }

  knownItem(itemId: string): number {
    return this.state.knownItem(itemId);
  }

  item(itemId: string): number {
    return this.state.item(itemId);
  }

  isLearned(item: number): boolean {
    return this.state.isLearned(item);
  }

  userVector(user: number): Float32Array {
    const live = this.state.userVector(user);
    if (!this.userHolds) return live;
    this.scratch.set(live);
    return this.scratch;
  }

  itemVector(item: number): Float32Array {
    return this.state.itemVector(item);
  }

  seedItem(item: number, vector: Float32Array): void {
    if (!this.itemHolds(item)) this.state.seedItem(item, vector);
  }

  addToItemVector(item: number, delta: Float32Array): void {
    if (!this.itemHolds(item)) this.state.addToItemVector(item, delta);
  }

  recentCount(user: number): number {
    return this.state.recentCount(user);
  }

  recentItem(user: number, k: number): number {
    return this.state.recentItem(user, k);
  }

  recordInteraction(user: number, item: number, atMs: number): void {
    if (!this.guarded) {
      this.state.recordInteraction(user, item, atMs);
      return;
    }
    if (!this.userHolds) this.state.recordUserInteraction(user, item, atMs);
    if (!this.itemHolds(item)) this.state.recordItemInteraction(item, user, atMs);
  }

  addCooccurrence(item: number, other: number, atMs: number): void {
    if (!this.itemHolds(item)) this.state.addCooccurrence(item, other, atMs);
  }

  sightItem(item: number, atMs: number): void {
    if (!this.itemHolds(item)) this.state.sightItem(item, atMs);
  }

  private itemHolds(item: number): boolean {
    return this.guarded && (this.book.item(this.state.items.idOf(item))?.get(this.key) ?? -1) >= this.offset;
  }
}
