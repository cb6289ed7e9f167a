import { ADD_APPENDED, ADD_CUT, ADD_NONE, type CooccurrenceLists } from './cooccurrence.ts';
import type { StateColumns } from './columns.ts';
import { grown } from './ids.ts';

/** What one committed batch changed: slots whose vector changed, and items whose popularity rose. */
export interface BatchChanges {
  readonly users: readonly number[];
  readonly itemVectors: readonly number[];
  readonly raisedItems: readonly number[];
}

/** The columns of a `CollaborativeState` the journal saves and restores, and how it frees slots. */
export interface JournaledState
  extends Pick<
    StateColumns,
    | 'userVec' | 'userCount' | 'userFirst' | 'userLast' | 'recentItems' | 'recentAt' | 'recentLen' | 'consumed'
    | 'itemVec' | 'itemCount' | 'shortLog' | 'longLog' | 'itemFirst' | 'itemLast' | 'audienceUser' | 'audienceAt' | 'audienceLen' | 'audienceGen'
  > {
  readonly dimension: number;
  readonly options: { readonly userHistoryLength: number; readonly consumedFilterBytes: number; readonly itemAudienceLength: number; readonly cooccurrenceLimit: number };
  readonly cooccurrence: CooccurrenceLists;
  releaseUser(u: number, referenced?: boolean): void;
  unexistUser(u: number): void;
  releaseItem(i: number): void;
  unexistItem(i: number): void;
}

/**
 * The undo journal of one open batch on a `CollaborativeState`. The first change of each part of an entity
 * in the batch copies that part into reusable typed arenas (nothing is allocated per event once they have
 * grown); co-occurrence changes are logged as operations and undone in reverse. `undo` restores exactly the
 * state the batch began with; `changes` lists what the batch touched, for the vector index and popularity.
 *
 * Parts of an item: its vector (negatives change only that and their first/last seen), its scalars (count,
 * popularity, first/last seen), its audience row. A user is saved whole (vector, scalars, history, filter).
 */

const ITEM_VECTOR = 1;
const ITEM_SCALARS = 2;
const ITEM_AUDIENCE = 4;
const ITEM_CREATED = 8;
const ITEM_RAISED = 16;
const ITEM_TOUCHED = 32;

const USER_SAVED = 1;
const USER_CREATED = 2;


/** A growable list of int32s, reused across batches. */
class IntList {
  values = new Int32Array(64);
  length = 0;
  push(v: number): number {
    if (this.length === this.values.length) this.values = grown(this.values, this.length + 1);
    this.values[this.length] = v;
    return this.length++;
  }
  toArray(): number[] {
    return Array.from(this.values.subarray(0, this.length));
  }
}

export class Journal {
  private userMark = new Uint8Array(0);
  private itemMark = new Uint8Array(0);
  private readonly usersTouched = new IntList();
  /** Users created by this batch; `createdFromSlot` 1 = a new slot (released on undo), 0 = was a reference. */
  private readonly usersCreated = new IntList();
  private readonly usersCreatedNewSlot = new IntList();
  private readonly usersSaved = new IntList();
  private userVec = new Float32Array(0);
  private userScalars = new Float64Array(0);
  private userRecent = new Int32Array(0);
  private userRecentAt = new Float64Array(0);
  private userRecentLen = new Uint16Array(0);
  private userFilter = new Uint8Array(0);

  private readonly itemsTouched = new IntList();
  private readonly itemsCreated = new IntList();
  private readonly itemsCreatedNewSlot = new IntList();
  private readonly vectorsSaved = new IntList();
  private itemVec = new Float32Array(0);
  private readonly scalarsSaved = new IntList();
  private itemScalarsArena = new Float64Array(0);
  private readonly audiencesSaved = new IntList();
  private audienceUser = new Int32Array(0);
  private audienceAt = new Float64Array(0);
  private audienceLen = new Uint16Array(0);
  private audienceGen = new Uint16Array(0);
  private readonly raisedItems = new IntList();
  private readonly vectorItems = new IntList();

  private readonly opItem = new IntList();
  private readonly opOther = new IntList();
  private readonly opKind = new IntList();
  private readonly opCount = new IntList();
  private readonly snapshots: { keys: Int32Array; counts: Float32Array }[] = [];

  constructor(private readonly state: JournaledState) {}

  reset(): void {
    for (let k = 0; k < this.usersTouched.length; k++) this.userMark[this.usersTouched.values[k]!] = 0;
    for (let k = 0; k < this.itemsTouched.length; k++) this.itemMark[this.itemsTouched.values[k]!] = 0;
    for (const list of [
      this.usersTouched, this.usersCreated, this.usersCreatedNewSlot, this.usersSaved, this.itemsTouched, this.itemsCreated,
      this.itemsCreatedNewSlot, this.vectorsSaved, this.scalarsSaved, this.audiencesSaved, this.raisedItems, this.vectorItems,
      this.opItem, this.opOther, this.opKind, this.opCount,
    ]) list.length = 0;
    this.snapshots.length = 0;
  }

  changes(): BatchChanges {
    const users = this.usersTouched.toArray();
    const result = { users, itemVectors: this.vectorItems.toArray(), raisedItems: this.raisedItems.toArray() };
    this.reset();
    return result;
  }

  /** Everything the batch changed so far; `vectorOnly`: items of which only the vector moved (negatives). */
  touched(): { users: number[]; items: number[]; vectorOnly: number[] } {
    const items: number[] = [];
    const vectorOnly: number[] = [];
    for (let k = 0; k < this.itemsTouched.length; k++) {
      const i = this.itemsTouched.values[k]!;
      if ((this.itemMark[i]! & ~(ITEM_VECTOR | ITEM_TOUCHED)) === 0) vectorOnly.push(i);
      else items.push(i);
    }
    return { users: this.usersTouched.toArray(), items, vectorOnly };
  }

  /** Items whose popularity rose in the batch so far. */
  raisedSoFar(): Int32Array {
    return this.raisedItems.values.subarray(0, this.raisedItems.length);
  }

  // ---- users ----

  userCreated(u: number, newSlot: boolean): void {
    const mark = this.markUser(u);
    this.userMark[u] = mark | USER_CREATED;
    this.usersCreated.push(u);
    this.usersCreatedNewSlot.push(newSlot ? 1 : 0);
  }

  /** Saves the user whole before its first change in the batch. */
  user(u: number): void {
    const mark = this.markUser(u);
    if (mark & (USER_SAVED | USER_CREATED)) return;
    this.userMark[u] = mark | USER_SAVED;
    const s = this.state;
    const n = this.usersSaved.push(u);
    const d = s.dimension;
    const h = s.options.userHistoryLength;
    const b = s.options.consumedFilterBytes;
    if (this.userVec.length < (n + 1) * d) this.userVec = grown(this.userVec, (n + 1) * d);
    this.userVec.set(s.userVec.subarray(u * d, u * d + d), n * d);
    if (this.userScalars.length < (n + 1) * 3) this.userScalars = grown(this.userScalars, (n + 1) * 3);
    this.userScalars[n * 3] = s.userCount[u]!;
    this.userScalars[n * 3 + 1] = s.userFirst[u]!;
    this.userScalars[n * 3 + 2] = s.userLast[u]!;
    const len = s.recentLen[u]!;
    if (this.userRecentLen.length < n + 1) this.userRecentLen = grown(this.userRecentLen, n + 1);
    this.userRecentLen[n] = len;
    if (this.userRecent.length < (n + 1) * h) this.userRecent = grown(this.userRecent, (n + 1) * h);
    if (this.userRecentAt.length < (n + 1) * h) this.userRecentAt = grown(this.userRecentAt, (n + 1) * h);
    this.userRecent.set(s.recentItems.subarray(u * h, u * h + len), n * h);
    this.userRecentAt.set(s.recentAt.subarray(u * h, u * h + len), n * h);
    if (this.userFilter.length < (n + 1) * b) this.userFilter = grown(this.userFilter, (n + 1) * b);
    this.userFilter.set(s.consumed.subarray(u * b, u * b + b), n * b);
  }

  private markUser(u: number): number {
    if (u >= this.userMark.length) this.userMark = grown(this.userMark, u + 1);
    const mark = this.userMark[u]!;
    if (mark === 0) this.usersTouched.push(u);
    return mark;
  }

  // ---- items ----

  itemCreated(i: number, newSlot: boolean): void {
    const mark = this.markItem(i);
    this.itemMark[i] = mark | ITEM_CREATED;
    this.itemsCreated.push(i);
    this.itemsCreatedNewSlot.push(newSlot ? 1 : 0);
  }

  itemVector(i: number): void {
    const mark = this.markItem(i);
    if (!(mark & ITEM_TOUCHED)) {
      this.itemMark[i] = mark | ITEM_TOUCHED;
      this.vectorItems.push(i);
    }
    if (mark & (ITEM_VECTOR | ITEM_CREATED)) return;
    this.itemMark[i]! |= ITEM_VECTOR;
    const s = this.state;
    const d = s.dimension;
    const n = this.vectorsSaved.push(i);
    if (this.itemVec.length < (n + 1) * d) this.itemVec = grown(this.itemVec, (n + 1) * d);
    this.itemVec.set(s.itemVec.subarray(i * d, i * d + d), n * d);
  }

  itemScalars(i: number): void {
    const mark = this.markItem(i);
    if (mark & (ITEM_SCALARS | ITEM_CREATED)) return;
    this.itemMark[i] = mark | ITEM_SCALARS;
    const s = this.state;
    const n = this.scalarsSaved.push(i);
    if (this.itemScalarsArena.length < (n + 1) * 5) this.itemScalarsArena = grown(this.itemScalarsArena, (n + 1) * 5);
    const a = this.itemScalarsArena;
    a[n * 5] = s.itemCount[i]!;
    a[n * 5 + 1] = s.shortLog[i]!;
    a[n * 5 + 2] = s.longLog[i]!;
    a[n * 5 + 3] = s.itemFirst[i]!;
    a[n * 5 + 4] = s.itemLast[i]!;
  }

  itemAudience(i: number): void {
    const mark = this.markItem(i);
    if (mark & (ITEM_AUDIENCE | ITEM_CREATED)) return;
    this.itemMark[i] = mark | ITEM_AUDIENCE;
    const s = this.state;
    const w = s.options.itemAudienceLength;
    const n = this.audiencesSaved.push(i);
    const len = s.audienceLen[i]!;
    if (this.audienceLen.length < n + 1) this.audienceLen = grown(this.audienceLen, n + 1);
    this.audienceLen[n] = len;
    if (this.audienceUser.length < (n + 1) * w) this.audienceUser = grown(this.audienceUser, (n + 1) * w);
    if (this.audienceAt.length < (n + 1) * w) this.audienceAt = grown(this.audienceAt, (n + 1) * w);
    if (this.audienceGen.length < (n + 1) * w) this.audienceGen = grown(this.audienceGen, (n + 1) * w);
    this.audienceUser.set(s.audienceUser.subarray(i * w, i * w + len), n * w);
    this.audienceAt.set(s.audienceAt.subarray(i * w, i * w + len), n * w);
    this.audienceGen.set(s.audienceGen.subarray(i * w, i * w + len), n * w);
  }

  raised(i: number): void {
    const mark = this.markItem(i);
    if (mark & ITEM_RAISED) return;
    this.itemMark[i] = mark | ITEM_RAISED;
    this.raisedItems.push(i);
  }

  /** Adds to `item`'s co-occurrence with `other` through the journal, so the add can be undone. */
  cooccurrenceAdd(item: number, other: number, count: number): void {
    const lists = this.state.cooccurrence;
    const kind = lists.add(item, other, count, this.saveBeforeCut);
    if (kind === ADD_NONE) return;
    this.opItem.push(item);
    this.opOther.push(other);
    this.opKind.push(kind);
    this.opCount.push(count);
  }

  private readonly saveBeforeCut = (item: number): void => {
    this.snapshots.push(this.state.cooccurrence.save(item));
  };

  private markItem(i: number): number {
    if (i >= this.itemMark.length) this.itemMark = grown(this.itemMark, i + 1);
    const mark = this.itemMark[i]!;
    if (mark === 0) this.itemsTouched.push(i);
    return mark;
  }

  // ---- undo ----

  undo(): void {
    const s = this.state;
    this.undoCooccurrence();
    const d = s.dimension;
    for (let n = 0; n < this.vectorsSaved.length; n++) {
      const i = this.vectorsSaved.values[n]!;
      s.itemVec.set(this.itemVec.subarray(n * d, n * d + d), i * d);
    }
    for (let n = 0; n < this.scalarsSaved.length; n++) {
      const i = this.scalarsSaved.values[n]!;
      const a = this.itemScalarsArena;
      s.itemCount[i] = a[n * 5]!;
      s.shortLog[i] = a[n * 5 + 1]!;
      s.longLog[i] = a[n * 5 + 2]!;
      s.itemFirst[i] = a[n * 5 + 3]!;
      s.itemLast[i] = a[n * 5 + 4]!;
    }
    const w = s.options.itemAudienceLength;
    for (let n = 0; n < this.audiencesSaved.length; n++) {
      const i = this.audiencesSaved.values[n]!;
      const len = this.audienceLen[n]!;
      s.audienceUser.set(this.audienceUser.subarray(n * w, n * w + len), i * w);
      s.audienceAt.set(this.audienceAt.subarray(n * w, n * w + len), i * w);
      s.audienceGen.set(this.audienceGen.subarray(n * w, n * w + len), i * w);
      s.audienceLen[i] = len;
    }
    this.undoUsers();
    for (let n = this.itemsCreated.length - 1; n >= 0; n--) {
      const i = this.itemsCreated.values[n]!;
      if (this.itemsCreatedNewSlot.values[n] === 1) s.releaseItem(i);
      else s.unexistItem(i);
    }
    this.reset();
  }

  private undoUsers(): void {
    const s = this.state;
    const d = s.dimension;
    const h = s.options.userHistoryLength;
    const b = s.options.consumedFilterBytes;
    for (let n = 0; n < this.usersSaved.length; n++) {
      const u = this.usersSaved.values[n]!;
      s.userVec.set(this.userVec.subarray(n * d, n * d + d), u * d);
      s.userCount[u] = this.userScalars[n * 3]!;
      s.userFirst[u] = this.userScalars[n * 3 + 1]!;
      s.userLast[u] = this.userScalars[n * 3 + 2]!;
      const len = this.userRecentLen[n]!;
      s.recentItems.set(this.userRecent.subarray(n * h, n * h + len), u * h);
      s.recentAt.set(this.userRecentAt.subarray(n * h, n * h + len), u * h);
      s.recentLen[u] = len;
      s.consumed.set(this.userFilter.subarray(n * b, n * b + b), u * b);
    }
    for (let n = this.usersCreated.length - 1; n >= 0; n--) {
      const u = this.usersCreated.values[n]!;
      if (this.usersCreatedNewSlot.values[n] === 1) s.releaseUser(u, false);
      else s.unexistUser(u);
    }
  }

  private undoCooccurrence(): void {
    const lists = this.state.cooccurrence;
    let snapshot = this.snapshots.length;
    for (let n = this.opKind.length - 1; n >= 0; n--) {
      const item = this.opItem.values[n]!;
      const kind = this.opKind.values[n]!;
      const other = this.opOther.values[n]!;
      if (kind === ADD_CUT) {
        // The snapshot holds the list with this add's entry appended, before the cut.
        lists.restore(item, this.snapshots[--snapshot]!);
        lists.remove(item, other);
      } else if (kind === ADD_APPENDED) lists.remove(item, other);
      else lists.subtract(item, other, this.opCount.values[n]!);
    }
  }
}
