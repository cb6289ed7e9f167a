import type { Interaction, SourcePosition } from '../../domain/events.ts';
import { sourceKey, type ItemDelta, type LearningState, type TimedId, type UserProfile } from '../../store/port.ts';
import { bloomAdd, createBloom } from '../../util/bloom.ts';
import type { StoreView } from '../state/store-view.ts';
import { createRng, fmix32, hashString } from '../../data/random.ts';
import { bprStep } from './bpr.ts';
import { randomVector } from './vectors.ts';

/**
 * Graph + embeddings: folds one interaction into the collaborative state.
 * - the user's bounded recent history and consumed-items filter;
 * - the item's recent audience, counts, popularity, and co-occurrence with the user's previous items;
 * - one BPR step per sampled negative on the user and item embeddings.
 * New users and items get a random vector at their first event and are usable from then on.
 */

export interface LearnerOptions {
  readonly dimension: number;
  readonly learningRate: number;
  readonly regularization: number;
  readonly initScale: number;
  readonly userHistoryLength: number;
  readonly cooccurrenceWindow: number;
  readonly consumedFilterBytes: number;
}

export interface Random {
  /** Uniform in [0, 1). */
  next(): number;
  /** Standard normal. */
  normal(): number;
}

export class CollaborativeLearner {
  /** Scratch vectors of `learnInto`, reused for every event. */
  private readonly scratch: { item: Float32Array; positive: Float32Array; negative: Float32Array; previous: Int32Array };

  /** Seeds the per-entity generators of `learnInto`. */
  private readonly seed: string;

  constructor(
    private readonly options: LearnerOptions,
    private readonly random: Random,
  ) {
    this.seed = String(Math.floor(random.next() * 4294967296));
    const d = options.dimension;
    this.scratch = { item: new Float32Array(d), positive: new Float32Array(d), negative: new Float32Array(d), previous: new Int32Array(options.cooccurrenceWindow) };
  }

  /**
   * Learns `event` into typed state, in place (the embedded store's batch): the same updates as `learn`
   * without a delta object or a copied profile. `item` is the event's item slot (`state.item`), `negatives`
   * the first `negativeCount` slots of sampled negatives. Returns the user's slot.
   */
  learnInto(state: LearningState, event: Interaction, item: number, negatives: Int32Array, negativeCount: number): number {
    const o = this.options;
    const { item: fresh, positive, negative: step, previous } = this.scratch;
    const at = event.timestampMs;
    const u = state.user(event.userId, (v) => this.initVector(v, `user/${event.userId}`));
    const userVector = state.userVector(u);
    const learned = state.isLearned(item);
    if (!learned) this.initVector(fresh, `item/${event.itemId}`);
    const itemVector = learned ? state.itemVector(item) : fresh;

    positive.fill(0);
    for (let n = 0; n < negativeCount; n++) {
      const j = negatives[n]!;
      if (j === item || !state.isLearned(j)) continue;
      step.fill(0);
      bprStep(userVector, itemVector, state.itemVector(j), positive, step, o.learningRate, o.regularization);
      // Only the vector moves: a sampled negative is not a sighting (its first/last seen stay), so a store
      // with a durable tier writes just its vector.
      state.addToItemVector(j, step);
    }

    // The user's previous items (before this event), this item left out: what it now co-occurs with.
    let count = 0;
    for (let k = 0; k < state.recentCount(u) && count < o.cooccurrenceWindow; k++) {
      const p = state.recentItem(u, k);
      if (p !== item) previous[count++] = p;
    }
    if (!learned) state.seedItem(item, fresh);
    state.addToItemVector(item, positive);
    for (let k = 0; k < count; k++) state.addCooccurrence(item, previous[k]!, at);
    state.recordInteraction(u, item, at);
    for (let k = 0; k < count; k++) state.addCooccurrence(previous[k]!, item, at);
    return u;
  }

  /**
   * Fills a new user's or item's vector: N(0, initScale²) per dimension, drawn from a generator seeded by the
   * learner's seed and the entity's identity, so it does not depend on which entities came first (a replay
   * from a checkpoint creates the same vectors as a clean run).
   */
  private initVector(vector: Float32Array, identity: string): void {
    const scale = this.options.initScale;
    const random = createRng(`${this.seed}/${identity}`);
    for (let k = 0; k < vector.length; k++) vector[k] = random.normal() * scale;
  }

  /** Items `learn` reads or changes for `event`: they must be loaded into the view first. */
  itemsToLoad(user: UserProfile | undefined, event: Interaction, negatives: readonly string[]): string[] {
    const previous = (user?.recentItems ?? []).slice(0, this.options.cooccurrenceWindow + 1).map((r) => r.id);
    return [event.itemId, ...negatives, ...previous];
  }

  /**
   * Learns `event`. The view must hold the user (if known), the item (if known), the user's recent items
   * and the `negatives`; `negatives` are item ids sampled by the caller (see `NegativeSampler`).
   */
  learn(view: StoreView, event: Interaction, negatives: readonly string[]): UserProfile {
    const o = this.options;
    const before = view.user(event.userId);
    const userVector = before ? Float32Array.from(before.vector) : randomVector(o.dimension, o.initScale, () => this.random.normal());
    const known = view.itemVector(event.itemId);
    const itemVector = known ?? randomVector(o.dimension, o.initScale, () => this.random.normal());

    const positiveDelta = new Float32Array(o.dimension);
    for (const negativeId of negatives) {
      const negative = negativeId === event.itemId ? undefined : view.itemVector(negativeId);
      if (!negative) continue;
      const negativeDelta = new Float32Array(o.dimension);
      bprStep(userVector, itemVector, negative, positiveDelta, negativeDelta, o.learningRate, o.regularization);
      view.applyItemDelta({ itemId: negativeId, vectorDelta: negativeDelta, atMs: event.timestampMs, interactions: 0 });
    }

    const previous = (before?.recentItems ?? []).filter((r) => r.id !== event.itemId).slice(0, o.cooccurrenceWindow);
    view.applyItemDelta(positiveItemDelta(event, known ? undefined : itemVector, positiveDelta, previous));
    for (const r of previous) {
      view.applyItemDelta({ itemId: r.id, atMs: event.timestampMs, interactions: 0, cooccurrence: new Map([[event.itemId, 1]]) });
    }

    const profile = nextUserProfile(before, event, userVector, o);
    view.putUser(profile);
    return profile;
  }
}

function positiveItemDelta(
  event: Interaction,
  initialVector: Float32Array | undefined,
  vectorDelta: Float32Array,
  previous: readonly TimedId[],
): ItemDelta {
  return {
    itemId: event.itemId,
    ...(initialVector ? { initialVector } : {}),
    vectorDelta,
    seenBy: { id: event.userId, atMs: event.timestampMs },
    interactions: 1,
    atMs: event.timestampMs,
    cooccurrence: new Map(previous.map((r) => [r.id, 1])),
  };
}

function nextUserProfile(
  before: UserProfile | undefined,
  event: Interaction,
  vector: Float32Array,
  o: LearnerOptions,
): UserProfile {
  const consumed = before ? Uint8Array.from(before.consumed) : createBloom(o.consumedFilterBytes);
  bloomAdd(consumed, event.itemId);
  const recent = [{ id: event.itemId, atMs: event.timestampMs }];
  for (const r of before?.recentItems ?? []) {
    if (recent.length >= o.userHistoryLength) break;
    if (r.id !== event.itemId) recent.push(r);
  }
  return {
    userId: event.userId,
    vector,
    recentItems: recent,
    interactionCount: (before?.interactionCount ?? 0) + 1,
    consumed,
    firstSeenMs: before ? Math.min(before.firstSeenMs, event.timestampMs) : event.timestampMs,
    lastSeenMs: Math.max(before?.lastSeenMs ?? 0, event.timestampMs),
  };
}

/**
 * `learner.learn` for the event at `source` on the profile path (`StoreView`), at most once per user state: when
 * the user's state already holds the event (`UserProfile.learned`: learned and written before a crash or a
 * failed publish kept its offset from committing), nothing changes and null is returned, so the event makes no
 * item deltas either; else the user's new profile, its position for the event's partition raised to the event,
 * which `StoreView.commit()` writes with the state (one upsert). The profile path's counterpart of the live
 * batch's guard (`store/tiered/learned.ts`); users are owned by partition, so one position per partition holds.
 */
export function learnEventOnce(
  learner: CollaborativeLearner,
  view: StoreView,
  event: Interaction,
  negatives: readonly string[],
  source: SourcePosition,
): UserProfile | null {
  const key = sourceKey(source.topic, source.partition);
  const offset = Number(source.offset);
  const held = view.user(event.userId)?.learned;
  if ((held?.get(key) ?? -1) >= offset) return null;
  const profile = learner.learn(view, event, negatives);
  // The partition's position is below the event's (else it was skipped above): raising it is setting it.
  const withPosition = { ...profile, learned: new Map(held).set(key, offset) };
  view.putUser(withPosition);
  return withPosition;
}

/**
 * One event learned into typed state the way the stream does it: the item interned, negatives drawn for the
 * event's id (`negatives` is the caller's reusable scratch, its length the number to draw), the item observed
 * by the sampler, then `learnInto`. Returns the user's slot.
 */
export function learnEventInto(
  learner: CollaborativeLearner,
  sampler: NegativeSampler<number>,
  state: LearningState,
  event: Interaction,
  negatives: Int32Array,
): number {
  const item = state.item(event.itemId);
  const drawn = sampler.sampleInto(negatives, negatives.length, item, event.eventId);
  sampler.observe(item);
  return learner.learnInto(state, event, item, negatives, drawn);
}

/**
 * Draws negatives in proportion to recent popularity by sampling a ring buffer of recently interacted items.
 * Popularity-proportional negatives push the model past "recommend what is popular", which uniform negatives
 * (mostly obscure items, easy to beat) do not. Bounded memory; per-instance state, which the embedded store's
 * checkpoint carries (`snapshot`/`restore`) and which is otherwise rebuilt after a restart.
 * Ids are whatever the caller keys items by: strings over profiles, int slots over the typed state.
 */
export class NegativeSampler<Id extends string | number = string> {
  private readonly ring: Id[] = [];
  private next = 0;
  /** Mixed into keyed draws, so samplers with different seeds draw differently for the same event. */
  private readonly salt: number;

  constructor(
    private readonly capacity: number,
    private readonly random: Random,
  ) {
    this.salt = Math.floor(random.next() * 4294967296) | 0;
  }

  /** Observations since `begin()`, undone by `rollback()`: [position, the id it held (undefined: appended)]. */
  private undo: [number, Id | undefined][] | null = null;

  observe(itemId: Id): void {
    this.undo?.push([this.next, this.ring.length < this.capacity ? undefined : this.ring[this.next]]);
    if (this.ring.length < this.capacity) this.ring.push(itemId);
    else this.ring[this.next] = itemId;
    this.next = (this.next + 1) % this.capacity;
  }

  /**
   * Starts recording observations so that a batch rolled back (`rollback`) leaves the ring as it found it: the
   * redelivered batch then draws exactly the negatives it drew the first time. `commit` keeps them.
   */
  begin(): void {
    this.undo = [];
  }

  commit(): void {
    this.undo = null;
  }

  rollback(): void {
    const undo = this.undo ?? [];
    for (let k = undo.length - 1; k >= 0; k--) {
      const [at, held] = undo[k]!;
      if (held === undefined) this.ring.pop();
      else this.ring[at] = held;
      this.next = at;
    }
    this.undo = null;
  }

  sample(count: number, avoid: Id): Id[] {
    const out: Id[] = [];
    out.length = this.sampleInto(out, count, avoid);
    return out;
  }

  /**
   * `sample` into `out` (reused by the caller); returns how many were drawn. With `key` (the event's identity)
   * the draws are a function of the key and the ring alone, not of how many draws came before: the same event
   * sequence then samples the same negatives whatever the batch boundaries, redeliveries and restarts.
   */
  sampleInto(out: { [k: number]: Id }, count: number, avoid: Id, key?: string): number {
    let n = 0;
    if (this.ring.length === 0) return 0;
    let state = key === undefined ? 0 : hashString(key) ^ this.salt;
    for (let tries = 0; n < count && tries < count * 3; tries++) {
      let u: number;
      if (key === undefined) u = this.random.next();
      else {
        state = (state + 0x9e3779b9) | 0;
        u = fmix32(state) / 4294967296;
      }
      const id = this.ring[Math.floor(u * this.ring.length)]!;
      if (id !== avoid) out[n++] = id;
    }
    return n;
  }

  // ---- checkpoints ----

  /** A copy of the ring and its next write position: a checkpoint carries them, so a restart draws from the same pool. */
  snapshot(): { ring: Id[]; next: number } {
    return { ring: this.ring.slice(), next: this.next };
  }

  /** Replaces the ring with a `snapshot()` (cut to this sampler's capacity). */
  restore(saved: { readonly ring: readonly Id[]; readonly next: number }): void {
    this.ring.length = 0;
    for (let k = 0; k < Math.min(saved.ring.length, this.capacity); k++) this.ring.push(saved.ring[k]!);
    this.next = this.ring.length < this.capacity ? this.ring.length : saved.next % this.capacity;
  }
}
