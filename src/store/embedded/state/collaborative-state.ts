import { bloomAddHashed, bloomHashes } from '../../../util/bloom.ts';
import { isSighting, isUnseenItem, UNSEEN_FIRST_SEEN_MS, UNSEEN_LAST_SEEN_MS, type ItemMergeLimits } from '../../item-merge.ts';
import { decayTauMs, EMPTY_LOG_SUM, logAddExp } from '../../popularity.ts';
import type { CooccurrenceRows, ItemDelta, ItemMetadata, ItemProfile, LearningState, TimedId, UserProfile } from '../../port.ts';
import { CooccurrenceLists } from './cooccurrence.ts';
import { grown, IdTable } from './ids.ts';
import type { StateColumns } from './columns.ts';
import { Journal, type BatchChanges } from './journal.ts';

export type { StateColumns } from './columns.ts';

export type { BatchChanges } from './journal.ts';

/**
 * The collaborative state of the embedded store in typed arrays: users and items are int slots (`IdTable`),
 * every per-entity value is a column (vectors in one `Float32Array` slab per collection, counters and decayed
 * popularity in `Float64Array`s, histories and audiences as fixed-width rows of slots and times, the consumed
 * filters in one byte arena, co-occurrence in `CooccurrenceLists`). Strings live in the id tables, titles and
 * categories only; profiles (`UserProfile`, `ItemProfile`) are built at the edges (`userProfile`,
 * `itemProfile`) and taken in by `setUser`/`setItem`.
 *
 * Changes come two ways. The learner changes the state in place through `LearningState` while a batch is open
 * (`begin`…`commit`/`rollback`): the first change of each part of an entity in the batch copies that part into
 * the `Journal`, so `rollback` restores the state the batch started from, and `commit` reports what changed.
 * Whole profiles and item deltas (the port's writes: restores, the routed item writer, tests) apply directly
 * and may not run while a batch is open (the store serializes them).
 *
 * The merge rules are the store contract's (`item-merge.ts`), checked for both layouts by the contract suite.
 *
 * Memory per entity (dimension d, history H, audience A, filter B bytes): a user 4d + 24 + 12H + B bytes, an
 * item 4d + 48 + 12A bytes plus 8 per co-occurrence entry held (see the README's memory model).
 */

export interface StateLimits extends ItemMergeLimits {
  readonly userHistoryLength: number;
  readonly consumedFilterBytes: number;
}

export class CollaborativeState implements LearningState {
  readonly dimension: number;
  readonly users = new IdTable();
  readonly items = new IdTable();
  private readonly limits: StateLimits;
  private readonly history: number;
  private readonly audience: number;
  private readonly filterBytes: number;
  private readonly shortTau: number;
  private readonly longTau: number;

  // Users. `userExists` is 0 for a slot only referenced (by an item's audience), 1 for a user the state holds.
  userExists = new Uint8Array(0);
  userGen = new Uint16Array(0);
  userVec = new Float32Array(0);
  userCount = new Float64Array(0);
  userFirst = new Float64Array(0);
  userLast = new Float64Array(0);
  recentItems = new Int32Array(0);
  recentAt = new Float64Array(0);
  recentLen = new Uint16Array(0);
  consumed = new Uint8Array(0);

  // Items. `itemExists` as for users (an item only referenced by a history or a co-occurrence list).
  itemExists = new Uint8Array(0);
  itemVec = new Float32Array(0);
  itemCount = new Float64Array(0);
  shortLog = new Float64Array(0);
  longLog = new Float64Array(0);
  itemFirst = new Float64Array(0);
  itemLast = new Float64Array(0);
  audienceUser = new Int32Array(0);
  audienceAt = new Float64Array(0);
  audienceLen = new Uint16Array(0);
  audienceGen = new Uint16Array(0);
  /** The item id's two Bloom hashes, so adding it to a user's consumed filter hashes no string. */
  hashA = new Uint32Array(0);
  hashB = new Uint32Array(0);
  readonly titles: (string | null)[] = [];
  readonly categories: (readonly string[])[] = [];
  readonly cooccurrence: CooccurrenceLists;

  private userLive = 0;
  private itemLive = 0;
  private journal: Journal | null = null;
  private readonly spare: Journal;

  constructor(limits: StateLimits) {
    this.limits = limits;
    this.dimension = limits.dimension;
    this.history = limits.userHistoryLength;
    this.audience = limits.itemAudienceLength;
    this.filterBytes = limits.consumedFilterBytes;
    this.shortTau = decayTauMs(limits.popularityShortHalfLifeMs);
    this.longTau = decayTauMs(limits.popularityLongHalfLifeMs);
    this.cooccurrence = new CooccurrenceLists(limits.cooccurrenceLimit, (a, b) => compareIds(this.items.idOf(a), this.items.idOf(b)));
    this.spare = new Journal(this);
  }

  get userCountLive(): number {
    return this.userLive;
  }

  get itemCountLive(): number {
    return this.itemLive;
  }

  // ---- batches ------------------------------------------------------------------------------------------

  get batchOpen(): boolean {
    return this.journal !== null;
  }

  begin(): void {
    if (this.journal) throw new Error('a batch is already open on this state');
    this.journal = this.spare;
    this.journal.reset();
  }

  /** Keeps the batch's changes and says what they were. */
  commit(): BatchChanges {
    const journal = this.requireJournal();
    const changes = journal.changes();
    this.journal = null;
    return changes;
  }

  /** Undoes every change since `begin`. */
  rollback(): void {
    const journal = this.requireJournal();
    this.journal = null;
    journal.undo();
  }

  /** Users and items the open batch changed so far. */
  touchedInBatch(): { users: number[]; items: number[]; vectorOnly: number[] } {
    return this.requireJournal().touched();
  }

  /** Items whose popularity the open batch raised so far (empty outside a batch). */
  raisedInBatch(): Int32Array {
    return this.journal ? this.journal.raisedSoFar() : NO_SLOTS;
  }

  private requireJournal(): Journal {
    if (!this.journal) throw new Error('no batch is open on this state');
    return this.journal;
  }

  // ---- LearningState --------------------------------------------------------------------------------------

  user(userId: string, init: (vector: Float32Array) => void): number {
    let u = this.users.slotOf(userId);
    if (u < 0 || this.userExists[u] === 0) {
      const created = u < 0;
      if (created) u = this.addUserSlot(userId);
      this.journal?.userCreated(u, created);
      this.userExists[u] = 1;
      this.userLive++;
      init(this.userVector(u));
      return u;
    }
    this.journal?.user(u);
    return u;
  }

  knownItem(itemId: string): number {
    const i = this.items.slotOf(itemId);
    return i >= 0 && this.itemExists[i] === 1 ? i : -1;
  }

  item(itemId: string): number {
    let i = this.items.slotOf(itemId);
    if (i >= 0 && this.itemExists[i] === 1) return i;
    const created = i < 0;
    if (created) i = this.addItemSlot(itemId);
    this.journal?.itemCreated(i, created);
    this.itemExists[i] = 1;
    this.itemLive++;
    return i;
  }

  isLearned(item: number): boolean {
    return this.itemFirst[item]! <= this.itemLast[item]!;
  }

  userVector(user: number): Float32Array {
    const d = this.dimension;
    return this.userVec.subarray(user * d, user * d + d);
  }

  itemVector(item: number): Float32Array {
    const d = this.dimension;
    return this.itemVec.subarray(item * d, item * d + d);
  }

  seedItem(item: number, vector: Float32Array): void {
    if (this.isLearned(item)) return;
    this.journal?.itemVector(item);
    this.itemVec.set(vector, item * this.dimension);
  }

  addToItemVector(item: number, delta: Float32Array): void {
    this.journal?.itemVector(item);
    const v = this.itemVec;
    const base = item * this.dimension;
    for (let k = 0; k < delta.length; k++) v[base + k]! += delta[k]!;
  }

  recentCount(user: number): number {
    return this.recentLen[user]!;
  }

  recentItem(user: number, k: number): number {
    return this.recentItems[user * this.history + k]!;
  }

  recordInteraction(user: number, item: number, atMs: number): void {
    this.recordUserInteraction(user, item, atMs);
    this.recordItemInteraction(item, user, atMs);
  }

  /** The user's half of `recordInteraction`: history, count, consumed filter, first/last seen. */
  recordUserInteraction(user: number, item: number, atMs: number): void {
    this.journal?.user(user);
    this.pushRecent(user, item, atMs);
    this.userCount[user]! += 1;
    bloomAddHashed(this.consumed, user * this.filterBytes, this.filterBytes, this.hashA[item]!, this.hashB[item]!);
    this.userFirst[user] = Math.min(this.userFirst[user]!, atMs);
    this.userLast[user] = Math.max(this.userLast[user]!, atMs);
  }

  /** The item's half of `recordInteraction`: audience, count, popularity, first/last seen. */
  recordItemInteraction(item: number, user: number, atMs: number): void {
    this.journal?.itemAudience(item);
    this.insertAudience(item, user, atMs);
    this.countItem(item, 1, atMs);
    this.sightItem(item, atMs);
  }

  addCooccurrence(item: number, other: number, atMs: number): void {
    // A history may name an item this state holds only as a reference (a profile restored from another
    // store): like a delta, the change creates it.
    if (this.itemExists[item] === 0) this.item(this.items.idOf(item));
    if (this.journal) this.journal.cooccurrenceAdd(item, other, 1);
    else this.cooccurrence.add(item, other, 1);
    this.sightItem(item, atMs);
  }

  sightItem(item: number, atMs: number): void {
    this.journal?.itemScalars(item);
    this.itemFirst[item] = Math.min(this.itemFirst[item]!, atMs);
    this.itemLast[item] = Math.max(this.itemLast[item]!, atMs);
  }

  // ---- edges: profiles in and out --------------------------------------------------------------------------

  userSlot(userId: string): number {
    const u = this.users.slotOf(userId);
    return u >= 0 && this.userExists[u] === 1 ? u : -1;
  }

  userProfile(u: number): UserProfile {
    return {
      userId: this.users.idOf(u),
      vector: this.userVector(u).slice(),
      recentItems: this.historyOf(u),
      interactionCount: this.userCount[u]!,
      consumed: this.consumedOf(u),
      firstSeenMs: this.userFirst[u]!,
      lastSeenMs: this.userLast[u]!,
    };
  }

  /** `userProfile` whose history and consumed filter are built when first read (neighbours, the event's user). */
  lazyUserProfile(u: number): UserProfile {
    return new LazyUserProfile(this, u);
  }

  historyOf(u: number): TimedId[] {
    const h = this.history;
    const out: TimedId[] = [];
    for (let k = 0; k < this.recentLen[u]!; k++) out.push({ id: this.items.idOf(this.recentItems[u * h + k]!), atMs: this.recentAt[u * h + k]! });
    return out;
  }

  consumedOf(u: number): Uint8Array {
    return this.consumed.slice(u * this.filterBytes, (u + 1) * this.filterBytes);
  }

  itemProfile(i: number): ItemProfile {
    return {
      itemId: this.items.idOf(i),
      vector: this.itemVector(i).slice(),
      recentUsers: this.audienceOf(i),
      interactionCount: this.itemCount[i]!,
      popularity: { shortLog: this.shortLog[i]!, longLog: this.longLog[i]! },
      cooccurrence: this.cooccurrenceMap(i),
      title: this.titles[i] ?? null,
      categories: this.categories[i] ?? [],
      firstSeenMs: this.itemFirst[i]!,
      lastSeenMs: this.itemLast[i]!,
    };
  }

  /**
   * `itemProfile` for readers that rarely look at the lists (the ranking stages read ~100 candidate profiles
   * per event and the co-occurrence of a few): the audience and co-occurrence are built on first access.
   */
  lazyItemProfile(i: number): ItemProfile {
    return new LazyItemProfile(this, i);
  }

  /** The item's audience, most recent first, leaving out users retired since (their slot's generation moved). */
  audienceOf(i: number): TimedId[] {
    const a = this.audience;
    const out: TimedId[] = [];
    for (let k = 0; k < this.audienceLen[i]!; k++) {
      const u = this.audienceUser[i * a + k]!;
      if (this.audienceGen[i * a + k] !== this.userGen[u] || !this.users.isLive(u)) continue;
      out.push({ id: this.users.idOf(u), atMs: this.audienceAt[i * a + k]! });
    }
    return out;
  }

  /** The co-occurrence lists of the held items among `itemIds`, keyed by item slot (live: read them at once). */
  cooccurrenceRows(itemIds: readonly string[]): CooccurrenceRows {
    const slots: number[] = [];
    for (const id of itemIds) {
      const i = this.knownItem(id);
      if (i >= 0) slots.push(i);
    }
    const lists = this.cooccurrence;
    return {
      rows: slots.length,
      rowId: (r) => this.items.idOf(slots[r]!),
      length: (r) => lists.length(slots[r]!),
      key: (r, e) => lists.keyAt(slots[r]!, e),
      count: (r, e) => lists.countAt(slots[r]!, e),
      keysOf: (r) => lists.keysOf(slots[r]!),
      countsOf: (r) => lists.countsOf(slots[r]!),
      keySpace: this.items.extent,
      idOf: (key) => this.items.idOf(key),
      keyOf: (id) => this.items.slotOf(id),
    };
  }

  cooccurrenceMap(i: number): Map<string, number> {
    const out = new Map<string, number>();
    const lists = this.cooccurrence;
    for (let k = 0; k < lists.length(i); k++) out.set(this.items.idOf(lists.keyAt(i, k)), lists.countAt(i, k));
    return out;
  }

  /** Installs a whole user profile, replacing what the state holds. */
  setUser(profile: UserProfile): number {
    this.assertNoBatch();
    let u = this.users.slotOf(profile.userId);
    if (u < 0) u = this.addUserSlot(profile.userId);
    if (this.userExists[u] === 0) {
      this.userExists[u] = 1;
      this.userLive++;
    }
    this.userVec.set(profile.vector, u * this.dimension);
    this.userCount[u] = profile.interactionCount;
    this.userFirst[u] = profile.firstSeenMs;
    this.userLast[u] = profile.lastSeenMs;
    const h = this.history;
    const n = Math.min(h, profile.recentItems.length);
    for (let k = 0; k < n; k++) {
      const r = profile.recentItems[k]!;
      this.recentItems[u * h + k] = this.itemReference(r.id);
      this.recentAt[u * h + k] = r.atMs;
    }
    this.recentLen[u] = n;
    const b = this.filterBytes;
    this.consumed.fill(0, u * b, (u + 1) * b);
    this.consumed.set(profile.consumed.subarray(0, b), u * b);
    return u;
  }

  /** Installs a whole item profile, replacing what the state holds. */
  setItem(profile: ItemProfile): number {
    this.assertNoBatch();
    const i = this.existingItem(profile.itemId);
    this.itemVec.set(profile.vector, i * this.dimension);
    this.itemCount[i] = profile.interactionCount;
    this.shortLog[i] = profile.popularity.shortLog;
    this.longLog[i] = profile.popularity.longLog;
    this.itemFirst[i] = profile.firstSeenMs;
    this.itemLast[i] = profile.lastSeenMs;
    const a = this.audience;
    const n = Math.min(a, profile.recentUsers.length);
    for (let k = 0; k < n; k++) {
      const r = profile.recentUsers[k]!;
      const u = this.userReference(r.id);
      this.audienceUser[i * a + k] = u;
      this.audienceGen[i * a + k] = this.userGen[u]!;
      this.audienceAt[i * a + k] = r.atMs;
    }
    this.audienceLen[i] = n;
    const entries: [number, number][] = [];
    for (const [id, count] of profile.cooccurrence) entries.push([this.itemReference(id), count]);
    this.cooccurrence.set(i, entries);
    this.titles[i] = profile.title;
    this.categories[i] = [...profile.categories];
    return i;
  }

  /** Sets title and categories; an item not held yet is created unseen (no vector, no counts). */
  setMetadata(meta: ItemMetadata): number {
    this.assertNoBatch();
    const i = this.existingItem(meta.itemId);
    this.titles[i] = meta.title;
    this.categories[i] = [...meta.categories];
    return i;
  }

  /**
   * Folds one (validated) delta in, by the rules of `item-merge.ts`; returns the item's slot. Outside batches
   * only: the port's item writes (the routed writer, restores through deltas, tests).
   */
  applyDelta(delta: ItemDelta): number {
    this.assertNoBatch();
    const i = this.existingItem(delta.itemId);
    if (delta.initialVector !== undefined && !this.isLearned(i)) this.itemVec.set(delta.initialVector, i * this.dimension);
    if (delta.vectorDelta) this.addToItemVector(i, delta.vectorDelta);
    if (delta.seenBy) this.insertAudience(i, this.userReference(delta.seenBy.id), delta.seenBy.atMs);
    const interactions = delta.interactions ?? 0;
    this.countItem(i, interactions, delta.atMs);
    if (delta.cooccurrence) for (const [id, count] of delta.cooccurrence) this.cooccurrence.add(i, this.itemReference(id), count);
    if (isSighting(delta)) this.sightItem(i, delta.atMs);
    return i;
  }

  /** Memory the columns hold, bytes (capacity, as allocated). */
  heldBytes(): { users: number; items: number; cooccurrence: number } {
    const columns = (arrays: readonly { byteLength: number }[]): number => arrays.reduce((s, a) => s + a.byteLength, 0);
    return {
      users: columns([this.userExists, this.userGen, this.userVec, this.userCount, this.userFirst, this.userLast, this.recentItems, this.recentAt, this.recentLen, this.consumed]),
      items: columns([this.itemExists, this.itemVec, this.itemCount, this.shortLog, this.longLog, this.itemFirst, this.itemLast, this.audienceUser, this.audienceAt, this.audienceLen, this.audienceGen, this.hashA, this.hashB]),
      cooccurrence: this.cooccurrence.heldBytes,
    };
  }

  // ---- internals -------------------------------------------------------------------------------------------

  private assertNoBatch(): void {
    if (this.journal) throw new Error('whole-profile writes and item deltas may not run while a batch is open (the store serializes them)');
  }

  private existingItem(itemId: string): number {
    let i = this.items.slotOf(itemId);
    if (i < 0) i = this.addItemSlot(itemId);
    if (this.itemExists[i] === 0) {
      this.itemExists[i] = 1;
      this.itemLive++;
    }
    return i;
  }

  /** Slot of an item an entry refers to; held only as a reference until the item itself arrives. */
  private itemReference(itemId: string): number {
    const i = this.items.slotOf(itemId);
    return i >= 0 ? i : this.addItemSlot(itemId);
  }

  private userReference(userId: string): number {
    const u = this.users.slotOf(userId);
    return u >= 0 ? u : this.addUserSlot(userId);
  }

  private addUserSlot(userId: string): number {
    const u = this.users.add(userId);
    this.ensureUsers(this.users.extent);
    this.clearUser(u);
    return u;
  }

  private addItemSlot(itemId: string): number {
    const i = this.items.add(itemId);
    this.ensureItems(this.items.extent);
    this.clearItem(i);
    const [a, b] = bloomHashes(itemId);
    this.hashA[i] = a;
    this.hashB[i] = b;
    return i;
  }

  /** Frees a slot created by a batch that was rolled back (`Journal.undo`). */
  releaseUser(u: number, referenced = true): void {
    if (this.userExists[u] === 1) this.userLive--;
    this.clearUser(u);
    this.users.release(u);
    // Audience entries written for the slot's previous holder no longer match it. (A rolled-back batch's new
    // user has none left: its audience entries were rolled back with it.)
    if (referenced) this.userGen[u] = (this.userGen[u]! + 1) & 0xffff;
  }

  /**
   * Forgets the users least recently seen until at most `keep` remain: their slots are released and reused by
   * new users (open worlds where new ids never stop arriving). Item audiences drop them lazily (generations).
   * Returns the retired ids. Outside batches only.
   */
  retireUsers(keep: number): string[] {
    this.assertNoBatch();
    const excess = this.userLive - keep;
    if (excess <= 0) return [];
    const live: number[] = [];
    for (const u of this.users.liveSlots()) if (this.userExists[u] === 1) live.push(u);
    live.sort((x, y) => this.userLast[x]! - this.userLast[y]! || x - y);
    const retired: string[] = [];
    for (const u of live.slice(0, excess)) {
      retired.push(this.users.idOf(u));
      this.releaseUser(u);
    }
    return retired;
  }

  releaseItem(i: number): void {
    if (this.itemExists[i] === 1) this.itemLive--;
    this.clearItem(i);
    this.items.release(i);
  }

  /** Makes an existing entity a mere reference again (a rolled-back batch created it from a reference). */
  unexistUser(u: number): void {
    if (this.userExists[u] === 1) this.userLive--;
    this.clearUser(u);
  }

  unexistItem(i: number): void {
    if (this.itemExists[i] === 1) this.itemLive--;
    const title = this.titles[i] ?? null;
    const categories = this.categories[i] ?? [];
    this.clearItem(i);
    this.titles[i] = title;
    this.categories[i] = categories;
  }

  private clearUser(u: number): void {
    const d = this.dimension;
    this.userExists[u] = 0;
    this.userVec.fill(0, u * d, u * d + d);
    this.userCount[u] = 0;
    this.userFirst[u] = Number.MAX_SAFE_INTEGER;
    this.userLast[u] = 0;
    this.recentLen[u] = 0;
    this.consumed.fill(0, u * this.filterBytes, (u + 1) * this.filterBytes);
  }

  private clearItem(i: number): void {
    const d = this.dimension;
    this.itemExists[i] = 0;
    this.itemVec.fill(0, i * d, i * d + d);
    this.itemCount[i] = 0;
    this.shortLog[i] = EMPTY_LOG_SUM;
    this.longLog[i] = EMPTY_LOG_SUM;
    this.itemFirst[i] = UNSEEN_FIRST_SEEN_MS;
    this.itemLast[i] = UNSEEN_LAST_SEEN_MS;
    this.audienceLen[i] = 0;
    this.cooccurrence.clear(i);
    this.titles[i] = null;
    this.categories[i] = [];
  }

  private ensureUsers(n: number): void {
    if (n <= this.userCount.length) return;
    this.userExists = grown(this.userExists, n);
    const cap = this.userExists.length;
    this.userGen = grown(this.userGen, cap);
    this.userVec = grown(this.userVec, cap * this.dimension);
    this.userCount = grown(this.userCount, cap);
    this.userFirst = grown(this.userFirst, cap);
    this.userLast = grown(this.userLast, cap);
    this.recentItems = grown(this.recentItems, cap * this.history);
    this.recentAt = grown(this.recentAt, cap * this.history);
    this.recentLen = grown(this.recentLen, cap);
    this.consumed = grown(this.consumed, cap * this.filterBytes);
  }

  private ensureItems(n: number): void {
    if (n <= this.itemCount.length) return;
    this.itemExists = grown(this.itemExists, n);
    const cap = this.itemExists.length;
    this.itemVec = grown(this.itemVec, cap * this.dimension);
    this.itemCount = grown(this.itemCount, cap);
    this.shortLog = grown(this.shortLog, cap);
    this.longLog = grown(this.longLog, cap);
    this.itemFirst = grown(this.itemFirst, cap);
    this.itemLast = grown(this.itemLast, cap);
    this.audienceUser = grown(this.audienceUser, cap * this.audience);
    this.audienceAt = grown(this.audienceAt, cap * this.audience);
    this.audienceLen = grown(this.audienceLen, cap);
    this.audienceGen = grown(this.audienceGen, cap * this.audience);
    this.hashA = grown(this.hashA, cap);
    this.hashB = grown(this.hashB, cap);
  }

  /** The item first in the user's history, its older occurrence removed, the oldest dropped past `history`. */
  private pushRecent(u: number, item: number, atMs: number): void {
    const h = this.history;
    const base = u * h;
    const items = this.recentItems;
    const times = this.recentAt;
    let n = this.recentLen[u]!;
    let at = -1;
    for (let k = 0; k < n; k++) {
      if (items[base + k] === item) {
        at = k;
        break;
      }
    }
    // Shift the entries before the old occurrence (or all, capped) one place down.
    const end = at >= 0 ? at : Math.min(n, h - 1);
    items.copyWithin(base + 1, base, base + end);
    times.copyWithin(base + 1, base, base + end);
    items[base] = item;
    times[base] = atMs;
    if (at < 0) n = Math.min(n + 1, h);
    this.recentLen[u] = n;
  }

  /** `insertRecent` of `item-merge.ts` on the item's audience row: latest time per user, most recent first. */
  private insertAudience(i: number, user: number, atMs: number): void {
    const a = this.audience;
    const base = i * a;
    const users = this.audienceUser;
    const times = this.audienceAt;
    const gens = this.audienceGen;
    const gen = this.userGen[user]!;
    const len = this.audienceLen[i]!;
    for (let k = 0; k < len; k++) {
      if (users[base + k] === user && gens[base + k] === gen && times[base + k]! >= atMs) return;
    }
    // Compact: drop the user's older entry and entries of users retired since they were written.
    let n = 0;
    for (let k = 0; k < len; k++) {
      const u = users[base + k]!;
      if ((u === user && gens[base + k] === gen) || gens[base + k] !== this.userGen[u] || !this.users.isLive(u)) continue;
      users[base + n] = u;
      times[base + n] = times[base + k]!;
      gens[base + n] = gens[base + k]!;
      n++;
    }
    const id = this.users.idOf(user);
    let at = 0;
    while (at < n && (times[base + at]! > atMs || (times[base + at] === atMs && this.users.idOf(users[base + at]!) < id))) at++;
    if (at >= a) {
      this.audienceLen[i] = n;
      return;
    }
    const keep = Math.min(n, a - 1);
    users.copyWithin(base + at + 1, base + at, base + keep);
    times.copyWithin(base + at + 1, base + at, base + keep);
    gens.copyWithin(base + at + 1, base + at, base + keep);
    users[base + at] = user;
    times[base + at] = atMs;
    gens[base + at] = gen;
    this.audienceLen[i] = keep + 1;
  }

  private countItem(i: number, interactions: number, atMs: number): void {
    if (!(interactions > 0)) return;
    this.journal?.itemScalars(i);
    this.itemCount[i]! += interactions;
    const weight = Math.log(interactions);
    this.shortLog[i] = logAddExp(this.shortLog[i]!, atMs / this.shortTau + weight);
    this.longLog[i] = logAddExp(this.longLog[i]!, atMs / this.longTau + weight);
    this.journal?.raised(i);
  }

  /** True for an item known only from its catalogue record (see `isUnseenItem`). */
  isUnseen(i: number): boolean {
    return isUnseenItem({ firstSeenMs: this.itemFirst[i]!, lastSeenMs: this.itemLast[i]! } as ItemProfile);
  }

  /** The limits the state was built with. */
  get options(): StateLimits {
    return this.limits;
  }

  // ---- snapshot restore (state/snapshot.ts) ---------------------------------------------------------------
  // Kept apart from the learning code above: the only writer of the whole state at once.

  /**
   * Replaces the whole state with a snapshot's (`state/snapshot.ts`), laid out for this state's limits (the
   * caller checks them): the id tables, every column (as long as its table's extent times the column's
   * width), titles, categories and co-occurrence; the live counts are recounted. Outside batches only.
   */
  replaceColumns(c: StateColumns): void {
    this.assertNoBatch();
    this.users.importSlots(c.userIds, c.userFree);
    this.items.importSlots(c.itemIds, c.itemFree);
    const d = this.dimension;
    const uc = grown(new Uint8Array(0), this.users.extent).length;
    const ic = grown(new Uint8Array(0), this.items.extent).length;
    const fit = <T extends Float32Array | Float64Array | Int32Array | Uint8Array | Uint16Array | Uint32Array>(
      Column: new (n: number) => T,
      data: ArrayLike<number>,
      length: number,
    ): T => {
      const out = new Column(length);
      out.set(data);
      return out;
    };
    this.userExists = fit(Uint8Array, c.userExists, uc);
    this.userGen = fit(Uint16Array, c.userGen, uc);
    this.userVec = fit(Float32Array, c.userVec, uc * d);
    this.userCount = fit(Float64Array, c.userCount, uc);
    this.userFirst = fit(Float64Array, c.userFirst, uc);
    this.userLast = fit(Float64Array, c.userLast, uc);
    this.recentItems = fit(Int32Array, c.recentItems, uc * this.history);
    this.recentAt = fit(Float64Array, c.recentAt, uc * this.history);
    this.recentLen = fit(Uint16Array, c.recentLen, uc);
    this.consumed = fit(Uint8Array, c.consumed, uc * this.filterBytes);
    this.itemExists = fit(Uint8Array, c.itemExists, ic);
    this.itemVec = fit(Float32Array, c.itemVec, ic * d);
    this.itemCount = fit(Float64Array, c.itemCount, ic);
    this.shortLog = fit(Float64Array, c.shortLog, ic);
    this.longLog = fit(Float64Array, c.longLog, ic);
    this.itemFirst = fit(Float64Array, c.itemFirst, ic);
    this.itemLast = fit(Float64Array, c.itemLast, ic);
    this.audienceUser = fit(Int32Array, c.audienceUser, ic * this.audience);
    this.audienceAt = fit(Float64Array, c.audienceAt, ic * this.audience);
    this.audienceLen = fit(Uint16Array, c.audienceLen, ic);
    this.audienceGen = fit(Uint16Array, c.audienceGen, ic * this.audience);
    this.hashA = fit(Uint32Array, c.hashA, ic);
    this.hashB = fit(Uint32Array, c.hashB, ic);
    this.titles.length = 0;
    this.categories.length = 0;
    for (let i = 0; i < this.items.extent; i++) {
      this.titles.push(c.titles[i] ?? null);
      this.categories.push(c.categories[i] ?? []);
    }
    this.cooccurrence.importLists(c.cooccurrenceLengths, c.cooccurrenceKeys, c.cooccurrenceCounts);
    this.userLive = 0;
    for (let u = 0; u < this.users.extent; u++) if (this.userExists[u] === 1) this.userLive++;
    this.itemLive = 0;
    for (let i = 0; i < this.items.extent; i++) if (this.itemExists[i] === 1) this.itemLive++;
  }
}


const NO_SLOTS = new Int32Array(0);

/** A user profile whose scalars are copied now and whose history and filter are built when first read. */
class LazyUserProfile implements UserProfile {
  readonly userId: string;
  readonly vector: Float32Array;
  readonly interactionCount: number;
  readonly firstSeenMs: number;
  readonly lastSeenMs: number;
  private history: TimedId[] | null = null;
  private filter: Uint8Array | null = null;

  constructor(
    private readonly state: CollaborativeState,
    private readonly slot: number,
  ) {
    this.userId = state.users.idOf(slot);
    this.vector = state.userVector(slot).slice();
    this.interactionCount = state.userCount[slot]!;
    this.firstSeenMs = state.userFirst[slot]!;
    this.lastSeenMs = state.userLast[slot]!;
  }

  get recentItems(): readonly TimedId[] {
    return (this.history ??= this.state.historyOf(this.slot));
  }

  get consumed(): Uint8Array {
    return (this.filter ??= this.state.consumedOf(this.slot));
  }
}

/** An item profile whose scalars are copied now and whose lists are built when first read. */
class LazyItemProfile implements ItemProfile {
  readonly itemId: string;
  readonly vector: Float32Array;
  readonly interactionCount: number;
  readonly popularity: { readonly shortLog: number; readonly longLog: number };
  readonly title: string | null;
  readonly categories: readonly string[];
  readonly firstSeenMs: number;
  readonly lastSeenMs: number;
  private audience: TimedId[] | null = null;
  private counts: Map<string, number> | null = null;

  constructor(
    private readonly state: CollaborativeState,
    private readonly slot: number,
  ) {
    this.itemId = state.items.idOf(slot);
    this.vector = state.itemVector(slot).slice();
    this.interactionCount = state.itemCount[slot]!;
    this.popularity = { shortLog: state.shortLog[slot]!, longLog: state.longLog[slot]! };
    this.title = state.titles[slot] ?? null;
    this.categories = state.categories[slot] ?? [];
    this.firstSeenMs = state.itemFirst[slot]!;
    this.lastSeenMs = state.itemLast[slot]!;
  }

  get recentUsers(): readonly TimedId[] {
    return (this.audience ??= this.state.audienceOf(this.slot));
  }

  get cooccurrence(): ReadonlyMap<string, number> {
    return (this.counts ??= this.state.cooccurrenceMap(this.slot));
  }
}

function compareIds(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}
