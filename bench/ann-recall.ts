import { performance } from 'node:perf_hooks';
import { createRng, type Rng } from '../src/data/random.ts';
import { bprStep } from '../src/stages/embeddings/bpr.ts';
import type { ItemDelta, UserProfile, VectorStore } from '../src/store/port.ts';
import { percentile } from '../src/util/stats.ts';

/**
 * Recall@k of a store's vector search against exact search, under an online workload shaped like the
 * pipeline's: the catalogue is loaded first (items known only by metadata, no vector), then users and items
 * get learned vectors (clustered, with popularity-dependent norms, as BPR produces), then drift: events in
 * batches of `batchEvents`, each a BPR step on a user, a positive item (mostly from the user's cluster) and
 * popular negatives, committed per batch through `putUsers` and `applyItemDeltas` as the processor does; then a
 * burst of new users and items. The workload keeps its own copy of every committed vector (the same float32
 * additions the store makes), so "exact" is exact over what the store should hold. Catalogue-only items are
 * never a correct answer, so a store that indexes placeholders loses recall.
 *
 * Used by `test/store/vector-index.test.ts` (recall asserted) and `npm run bench -- ann` (recall printed
 * beside search latency).
 */

export interface AnnWorkloadOptions {
  readonly users: number;
  /** Items learned during warm-up. */
  readonly items: number;
  /** Catalogue items learned by the burst (new items with no graph position yet). */
  readonly burst: number;
  /** Catalogue items never learned: placeholders that must never be returned. */
  readonly placeholders: number;
  readonly dimension: number;
  readonly driftEvents: number;
  readonly batchEvents: number;
  /** Searches per collection per measurement. */
  readonly queries: number;
  readonly k: number;
  readonly seed: number;
}

export const DEFAULT_ANN_WORKLOAD: AnnWorkloadOptions = {
  users: 100_000,
  items: 100_000,
  burst: 1_000,
  placeholders: 10_000,
  dimension: 32,
  driftEvents: 20_000,
  batchEvents: 500,
  queries: 200,
  k: 50,
  seed: 7,
};

export interface RecallRow {
  readonly phase: string;
  readonly collection: 'items' | 'users';
  readonly recall: number;
  /** Returned ids that are catalogue placeholders (must be 0). */
  readonly placeholdersReturned: number;
  readonly p50Ms: number;
  readonly p99Ms: number;
}

const CLUSTERS = 64;
const T0 = 1_760_000_000_000;
const LEARNING_RATE = 0.05;
const REGULARIZATION = 0.002;

/** Ground truth: the committed vectors of one collection, and which slots have a learned vector. */
class Mirror {
  readonly vectors: Float32Array;
  readonly learned: Uint8Array;

  constructor(
    readonly size: number,
    readonly dim: number,
  ) {
    this.vectors = new Float32Array(size * dim);
    this.learned = new Uint8Array(size);
  }

  row(slot: number): Float32Array {
    return this.vectors.subarray(slot * this.dim, (slot + 1) * this.dim);
  }

  /** Exact top-k learned slots by inner product, skipping `skip`. */
  exact(query: Float32Array, k: number, skip: ReadonlySet<number>): number[] {
    const best: { slot: number; score: number }[] = [];
    for (let s = 0; s < this.size; s++) {
      if (!this.learned[s] || skip.has(s)) continue;
      const score = dot(this.vectors, s * this.dim, query, this.dim);
      if (best.length === k && score <= best[k - 1]!.score) continue;
      let i = best.length === k ? k - 1 : best.length;
      if (best.length === k) best.pop();
      while (i > 0 && best[i - 1]!.score < score) i--;
      best.splice(i, 0, { slot: s, score });
    }
    return best.map((b) => b.slot);
  }
}

function dot(m: Float32Array, offset: number, q: Float32Array, dim: number): number {
  let s = 0;
  for (let d = 0; d < dim; d++) s += m[offset + d]! * q[d]!;
  return s;
}

const itemId = (slot: number): string => `item-${slot}`;
const userId = (slot: number): string => `user-${slot}`;
const slotOf = (id: string): number => Number(id.slice(id.indexOf('-') + 1));

export class AnnWorkload {
  readonly items: Mirror;
  readonly users: Mirror;
  private readonly rng: Rng;
  private readonly centers: Float32Array[];
  private readonly consumed: Uint8Array = new Uint8Array(8);
  private clock = T0;

  constructor(
    private readonly store: VectorStore,
    private readonly o: AnnWorkloadOptions,
  ) {
    this.rng = createRng(o.seed);
    this.items = new Mirror(o.items + o.burst + o.placeholders, o.dimension);
    this.users = new Mirror(o.users + o.burst, o.dimension);
    this.centers = Array.from({ length: CLUSTERS }, () => this.gaussian(1 / Math.sqrt(o.dimension)));
  }

  /** Every catalogue item by metadata only, before anything is learned (as the demo and the bench do). */
  async loadCatalogue(): Promise<void> {
    const all = Array.from({ length: this.items.size }, (_, i) => ({ itemId: itemId(i), title: `Item ${i}`, categories: [`c${i % CLUSTERS}`] }));
    for (let from = 0; from < all.length; from += 5_000) await this.store.putItemMetadata(all.slice(from, from + 5_000));
  }

  /** Learned vectors for `users` users and `items` items, committed in batches. */
  async warmUp(): Promise<void> {
    await this.learnNew(0, this.o.users, 0, this.o.items);
  }

  /** `burst` new users and items (catalogue items that had no vector yet). */
  async burst(): Promise<void> {
    await this.learnNew(this.o.users, this.o.users + this.o.burst, this.o.items, this.o.items + this.o.burst);
  }

  /** `events` BPR steps, committed every `batchEvents`. */
  async drift(events: number): Promise<void> {
    for (let done = 0; done < events; done += this.o.batchEvents) {
      const batch = new DriftBatch(this.items, this.users, this.o.dimension);
      for (let e = done; e < Math.min(events, done + this.o.batchEvents); e++) this.driftEvent(batch);
      await this.commit(batch);
    }
  }

  /** Recall@k of `searchItems` and `searchUsers` for `queries` learned users' vectors, with latencies. */
  async measure(phase: string): Promise<RecallRow[]> {
    const learnedUsers = this.learnedSlots(this.users);
    const queries = Array.from({ length: this.o.queries }, () => learnedUsers[this.rng.int(learnedUsers.length)]!);
    return [await this.measureItems(phase, queries), await this.measureUsers(phase, queries)];
  }

  private async measureItems(phase: string, queries: readonly number[]): Promise<RecallRow> {
    const learned = this.learnedSlots(this.items);
    const cases = queries.map((u) => {
      // Exclude 20 learned items, as a user's recent history is excluded by the candidates stage.
      const skip = new Set(Array.from({ length: 20 }, () => learned[this.rng.int(learned.length)]!));
      return { query: Float32Array.from(this.users.row(u)), skip };
    });
    return this.measureCollection(phase, 'items', this.items, cases, (q, exclude) =>
      this.store.searchItems(q, this.o.k, new Set([...exclude].map(itemId))),
    );
  }

  private async measureUsers(phase: string, queries: readonly number[]): Promise<RecallRow> {
    const cases = queries.map((u) => ({ query: Float32Array.from(this.users.row(u)), skip: new Set([u]) }));
    return this.measureCollection(phase, 'users', this.users, cases, (q, exclude) =>
      this.store.searchUsers(q, this.o.k, new Set([...exclude].map(userId))),
    );
  }

  private async measureCollection(
    phase: string,
    collection: RecallRow['collection'],
    mirror: Mirror,
    cases: readonly { query: Float32Array; skip: ReadonlySet<number> }[],
    search: (query: Float32Array, exclude: ReadonlySet<number>) => Promise<readonly { id: string }[]>,
  ): Promise<RecallRow> {
    const ms: number[] = [];
    let hits = 0;
    let placeholders = 0;
    for (const { query, skip } of cases) {
      const started = performance.now();
      const found = await search(query, skip);
      ms.push(performance.now() - started);
      const truth = new Set(mirror.exact(query, this.o.k, skip));
      for (const n of found) {
        const slot = slotOf(n.id);
        if (truth.has(slot)) hits++;
        if (!mirror.learned[slot]) placeholders++;
      }
    }
    const recall = hits / (cases.length * this.o.k);
    return { phase, collection, recall, placeholdersReturned: placeholders, p50Ms: percentile(ms, 50), p99Ms: percentile(ms, 99) };
  }

  private learnedSlots(mirror: Mirror): number[] {
    const out: number[] = [];
    for (let s = 0; s < mirror.size; s++) if (mirror.learned[s]) out.push(s);
    return out;
  }

  private async learnNew(userFrom: number, userTo: number, itemFrom: number, itemTo: number): Promise<void> {
    const step = 2_000;
    for (let i = itemFrom; i < itemTo; i += step) {
      const deltas: ItemDelta[] = [];
      for (let s = i; s < Math.min(itemTo, i + step); s++) deltas.push(this.newItem(s));
      await this.store.applyItemDeltas(deltas);
    }
    for (let u = userFrom; u < userTo; u += step) {
      const profiles: UserProfile[] = [];
      for (let s = u; s < Math.min(userTo, u + step); s++) profiles.push(this.newUser(s));
      await this.store.putUsers(profiles);
    }
  }

  /** A clustered vector whose norm grows with popularity (low slots are popular), as BPR's do. */
  private newItem(slot: number): ItemDelta {
    const norm = 0.3 + 1.2 / Math.sqrt(1 + slot / 500);
    const v = this.clustered(slot % CLUSTERS, norm, 0.7);
    this.items.row(slot).set(v);
    this.items.learned[slot] = 1;
    return { itemId: itemId(slot), initialVector: v, interactions: 1, atMs: this.tick() };
  }

  private newUser(slot: number): UserProfile {
    const v = this.clustered(slot % CLUSTERS, 0.5 + this.rng.next(), 0.8);
    this.users.row(slot).set(v);
    this.users.learned[slot] = 1;
    return this.userProfile(slot, v);
  }

  private userProfile(slot: number, vector: Float32Array): UserProfile {
    const at = this.tick();
    return { userId: userId(slot), vector: Float32Array.from(vector), recentItems: [], interactionCount: 1, consumed: this.consumed, firstSeenMs: T0, lastSeenMs: at };
  }

  private driftEvent(batch: DriftBatch): void {
    const o = this.o;
    const user = this.rng.int(o.users);
    // Mostly an item of the user's cluster, Zipf-like within it; sometimes a popular item anywhere.
    const positive = this.rng.bool(0.8)
      ? (user % CLUSTERS) + CLUSTERS * this.zipf(Math.floor(o.items / CLUSTERS))
      : this.zipf(o.items);
    const u = batch.user(user);
    for (let n = 0; n < 2; n++) {
      const negative = this.zipf(o.items);
      if (negative !== positive) bprOnCopies(u, batch.item(positive), batch.item(negative));
    }
  }

  private async commit(batch: DriftBatch): Promise<void> {
    const at = this.tick();
    const deltas = batch.itemDeltas(at);
    await this.store.applyItemDeltas(deltas);
    await this.store.putUsers(batch.userSlots().map((s) => this.userProfile(s, this.users.row(s))));
  }

  /** Rank in [0, n), P(r) ∝ 1/(r+1) roughly. */
  private zipf(n: number): number {
    return Math.min(n - 1, Math.floor(Math.exp(this.rng.next() * Math.log(n + 1)) - 1));
  }

  private clustered(cluster: number, norm: number, noise: number): Float32Array {
    const c = this.centers[cluster]!;
    const e = this.gaussian(1 / Math.sqrt(this.o.dimension));
    return Float32Array.from(c, (x, d) => norm * ((1 - noise) * x + noise * e[d]!));
  }

  private gaussian(scale: number): Float32Array {
    return Float32Array.from({ length: this.o.dimension }, () => this.rng.normal() * scale);
  }

  private tick(): number {
    return (this.clock += 1_000);
  }
}

/**
 * Working copies of the vectors one batch touches (what the processor's batch view holds). On commit, an
 * item's delta is (working − committed) in float32, and the mirror adds it exactly as the store will.
 */
class DriftBatch {
  private readonly itemWork = new Map<number, Float32Array>();
  private readonly userWork = new Map<number, Float32Array>();

  constructor(
    private readonly items: Mirror,
    private readonly users: Mirror,
    private readonly dim: number,
  ) {}

  item(slot: number): Float32Array {
    let v = this.itemWork.get(slot);
    if (!v) this.itemWork.set(slot, (v = Float32Array.from(this.items.row(slot))));
    return v;
  }

  user(slot: number): Float32Array {
    let v = this.userWork.get(slot);
    if (!v) this.userWork.set(slot, (v = Float32Array.from(this.users.row(slot))));
    return v;
  }

  itemDeltas(atMs: number): ItemDelta[] {
    const out: ItemDelta[] = [];
    for (const [slot, work] of this.itemWork) {
      const row = this.items.row(slot);
      const delta = new Float32Array(this.dim);
      for (let d = 0; d < this.dim; d++) delta[d] = work[d]! - row[d]!;
      for (let d = 0; d < this.dim; d++) row[d]! += delta[d]!;
      out.push({ itemId: itemId(slot), vectorDelta: delta, interactions: 1, atMs });
    }
    return out;
  }

  userSlots(): number[] {
    for (const [slot, work] of this.userWork) this.users.row(slot).set(work);
    return [...this.userWork.keys()];
  }
}

/** The learner's BPR step, applied to working copies (the learner writes the item halves as deltas). */
function bprOnCopies(u: Float32Array, i: Float32Array, j: Float32Array): void {
  const di = new Float32Array(u.length);
  const dj = new Float32Array(u.length);
  bprStep(u, i, j, di, dj, LEARNING_RATE, REGULARIZATION);
  for (let d = 0; d < u.length; d++) {
    i[d]! += di[d]!;
    j[d]! += dj[d]!;
  }
}
