/**
 * The whole of a `CollaborativeState` as flat data (`state/snapshot.ts` writes and reads it): the id tables and
 * every column cut to its table's extent (rows of `width` values per slot where a column has rows).
 */
export interface StateColumns {
  readonly userIds: readonly (string | null)[];
  readonly userFree: readonly number[];
  readonly itemIds: readonly (string | null)[];
  readonly itemFree: readonly number[];
  readonly userExists: Uint8Array;
  /** Bumped when a user slot is released: an audience entry holds the generation it was written in. */
  readonly userGen: Uint16Array;
  readonly userVec: Float32Array;
  readonly userCount: Float64Array;
  readonly userFirst: Float64Array;
  readonly userLast: Float64Array;
  readonly recentItems: Int32Array;
  readonly recentAt: Float64Array;
  readonly recentLen: Uint16Array;
  readonly consumed: Uint8Array;
  readonly itemExists: Uint8Array;
  readonly itemVec: Float32Array;
  readonly itemCount: Float64Array;
  readonly shortLog: Float64Array;
  readonly longLog: Float64Array;
  readonly itemFirst: Float64Array;
  readonly itemLast: Float64Array;
  readonly audienceUser: Int32Array;
  readonly audienceAt: Float64Array;
  readonly audienceLen: Uint16Array;
  readonly audienceGen: Uint16Array;
  readonly hashA: Uint32Array;
  readonly hashB: Uint32Array;
  readonly titles: readonly (string | null)[];
  readonly categories: readonly (readonly string[])[];
  readonly cooccurrenceLengths: Int32Array;
  readonly cooccurrenceKeys: Int32Array;
  readonly cooccurrenceCounts: Float32Array;
}
