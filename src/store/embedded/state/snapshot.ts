import { crc32 } from 'node:zlib';
import { FatalError } from '../../../errors/index.ts';
import { CollaborativeState, type StateColumns, type StateLimits } from './collaborative-state.ts';

/**
 * The embedded store's snapshot file, format 2: the typed state written as it lies in memory, no object per
 * profile. Layout (all integers little-endian):
 *
 *   bytes 0–7    magic `STARSNP2`
 *   bytes 8–11   u32: byte length H of the header
 *   bytes 12–15  u32: 0 (reserved)
 *   16 … 16+H    header, UTF-8 JSON (`SnapshotHeader`): format version, limits, counts, the checkpoint's
 *                metadata (opaque here), and the sections in file order with their type and byte length
 *   then         the sections, each starting at a multiple of 8 (zero padding): typed columns as raw bytes,
 *                ids, titles and categories as UTF-8 JSON arrays
 *
 * The header's `crc32` covers every section's bytes (not the padding), so a torn or corrupted file is refused
 * by name rather than restored into a wrong state. Typed arrays are copied in platform order; the header says
 * `LE` and a big-endian reader refuses the file (none of Node's supported platforms is big-endian).
 *
 * Writing is two steps so that a checkpoint holds the event loop only for copies: `captureSnapshot` copies
 * the columns (synchronously, between batches: no batch may be open), `encodeSnapshot` turns that copy into
 * the file's bytes later (JSON of the ids, the checksum). Reading: `decodeSnapshot` checks and parses a file,
 * `restoreSnapshot` installs it into a `CollaborativeState`: the columns as they are when the state's limits
 * equal the snapshot's, else through profiles (`userProfile`/`setUser`), which re-cut histories, audiences and
 * co-occurrence lists to the new limits. A different dimension, consumed-filter size or popularity half-life is
 * refused: vectors, Bloom filters and the stored popularity log-sums would mean something else.
 */

export const SNAPSHOT_MAGIC = 'STARSNP2';
export const SNAPSHOT_VERSION = 2;
const PREFIX_BYTES = 16;

/** The limits a snapshot's layout depends on. */
export interface SnapshotLimits {
  readonly dimension: number;
  readonly userHistoryLength: number;
  readonly itemAudienceLength: number;
  readonly consumedFilterBytes: number;
  readonly cooccurrenceLimit: number;
  readonly popularityShortHalfLifeMs: number;
  readonly popularityLongHalfLifeMs: number;
}

type SectionType = 'u8' | 'u16' | 'i32' | 'u32' | 'f32' | 'f64' | 'json';

interface SectionEntry {
  readonly name: string;
  readonly type: SectionType;
  readonly byteLength: number;
}

export interface SnapshotHeader {
  readonly format: 'starstream-embedded-snapshot';
  readonly version: number;
  readonly endianness: 'LE';
  readonly limits: SnapshotLimits;
  readonly counts: {
    readonly userSlots: number;
    readonly itemSlots: number;
    readonly users: number;
    readonly items: number;
    readonly cooccurrenceEntries: number;
    readonly negatives: number;
  };
  /** The negative sampler's next write position in its ring (null: no ring in this snapshot). */
  readonly negativesNext: number | null;
  /** What the writer keeps beside the state (the checkpoint's source positions); JSON, opaque here. */
  readonly meta: unknown;
  readonly sections: readonly SectionEntry[];
  readonly crc32: number;
}

/** The negative sampler's ring over item slots (`NegativeSampler<number>.snapshot()`). */
export interface NegativeRing {
  readonly ring: readonly number[];
  readonly next: number;
}

/** A consistent copy of the state, taken between batches; `encodeSnapshot` makes the file of it. */
export interface CapturedSnapshot {
  readonly limits: SnapshotLimits;
  readonly columns: StateColumns;
  readonly users: number;
  readonly items: number;
  readonly negatives: NegativeRing | null;
  readonly meta: unknown;
}

/** A decoded file: what `restoreSnapshot` installs. */
export interface DecodedSnapshot {
  readonly header: SnapshotHeader;
  readonly columns: StateColumns;
  readonly negatives: NegativeRing | null;
}

export function snapshotLimits(limits: StateLimits): SnapshotLimits {
  return {
    dimension: limits.dimension,
    userHistoryLength: limits.userHistoryLength,
    itemAudienceLength: limits.itemAudienceLength,
    consumedFilterBytes: limits.consumedFilterBytes,
    cooccurrenceLimit: limits.cooccurrenceLimit,
    popularityShortHalfLifeMs: limits.popularityShortHalfLifeMs,
    popularityLongHalfLifeMs: limits.popularityLongHalfLifeMs,
  };
}

/**
 * Copies the state (no batch may be open): every column cut to its table's extent, the id tables, titles,
 * categories and co-occurrence lists, and the negative ring. Strings are shared, not copied (they are
 * immutable); everything the learner changes in place is copied, so the capture stays as it was while the
 * stream goes on.
 */
export function captureSnapshot(state: CollaborativeState, extras: { readonly negatives?: NegativeRing | null; readonly meta?: unknown } = {}): CapturedSnapshot {
  if (state.batchOpen) throw new Error('a snapshot cannot be taken while a batch is open');
  const nu = state.users.extent;
  const ni = state.items.extent;
  const d = state.dimension;
  const o = state.options;
  const users = state.users.exportSlots();
  const items = state.items.exportSlots();
  const lists = state.cooccurrence.exportLists(ni);
  const columns: StateColumns = {
    userIds: users.ids,
    userFree: users.free,
    itemIds: items.ids,
    itemFree: items.free,
    userExists: state.userExists.slice(0, nu),
    userGen: state.userGen.slice(0, nu),
    userVec: state.userVec.slice(0, nu * d),
    userCount: state.userCount.slice(0, nu),
    userFirst: state.userFirst.slice(0, nu),
    userLast: state.userLast.slice(0, nu),
    recentItems: state.recentItems.slice(0, nu * o.userHistoryLength),
    recentAt: state.recentAt.slice(0, nu * o.userHistoryLength),
    recentLen: state.recentLen.slice(0, nu),
    consumed: state.consumed.slice(0, nu * o.consumedFilterBytes),
    itemExists: state.itemExists.slice(0, ni),
    itemVec: state.itemVec.slice(0, ni * d),
    itemCount: state.itemCount.slice(0, ni),
    shortLog: state.shortLog.slice(0, ni),
    longLog: state.longLog.slice(0, ni),
    itemFirst: state.itemFirst.slice(0, ni),
    itemLast: state.itemLast.slice(0, ni),
    audienceUser: state.audienceUser.slice(0, ni * o.itemAudienceLength),
    audienceAt: state.audienceAt.slice(0, ni * o.itemAudienceLength),
    audienceLen: state.audienceLen.slice(0, ni),
    audienceGen: state.audienceGen.slice(0, ni * o.itemAudienceLength),
    hashA: state.hashA.slice(0, ni),
    hashB: state.hashB.slice(0, ni),
    titles: state.titles.slice(0, ni),
    categories: state.categories.slice(0, ni),
    cooccurrenceLengths: lists.lengths,
    cooccurrenceKeys: lists.keys,
    cooccurrenceCounts: lists.counts,
  };
  const negatives = extras.negatives ? { ring: extras.negatives.ring.slice(), next: extras.negatives.next } : null;
  return { limits: snapshotLimits(o), columns, users: state.userCountLive, items: state.itemCountLive, negatives, meta: extras.meta ?? null };
}

/** Binary sections in file order, with their column names (`StateColumns`). */
const BINARY: readonly (readonly [keyof StateColumns, SectionType])[] = [
  ['userExists', 'u8'],
  ['userGen', 'u16'],
  ['userVec', 'f32'],
  ['userCount', 'f64'],
  ['userFirst', 'f64'],
  ['userLast', 'f64'],
  ['recentItems', 'i32'],
  ['recentAt', 'f64'],
  ['recentLen', 'u16'],
  ['consumed', 'u8'],
  ['itemExists', 'u8'],
  ['itemVec', 'f32'],
  ['itemCount', 'f64'],
  ['shortLog', 'f64'],
  ['longLog', 'f64'],
  ['itemFirst', 'f64'],
  ['itemLast', 'f64'],
  ['audienceUser', 'i32'],
  ['audienceAt', 'f64'],
  ['audienceLen', 'u16'],
  ['audienceGen', 'u16'],
  ['hashA', 'u32'],
  ['hashB', 'u32'],
  ['cooccurrenceLengths', 'i32'],
  ['cooccurrenceKeys', 'i32'],
  ['cooccurrenceCounts', 'f32'],
];

const JSON_SECTIONS: readonly (keyof StateColumns)[] = ['userIds', 'userFree', 'itemIds', 'itemFree', 'titles', 'categories'];

const ARRAY_OF: Record<Exclude<SectionType, 'json'>, new (buffer: ArrayBuffer) => ArrayBufferView> = {
  u8: Uint8Array,
  u16: Uint16Array,
  i32: Int32Array,
  u32: Uint32Array,
  f32: Float32Array,
  f64: Float64Array,
};

const pad8 = (n: number): number => (n + 7) & ~7;

/** The file's bytes for a capture (JSON of the id tables, the checksum, one buffer). */
export function encodeSnapshot(captured: CapturedSnapshot): Buffer {
  const sections: { entry: SectionEntry; bytes: Uint8Array }[] = [];
  const c = captured.columns;
  for (const [name, type] of BINARY) {
    const view = c[name] as ArrayBufferView;
    sections.push({ entry: { name, type, byteLength: view.byteLength }, bytes: new Uint8Array(view.buffer, view.byteOffset, view.byteLength) });
  }
  if (captured.negatives) {
    const ring = Int32Array.from(captured.negatives.ring);
    sections.push({ entry: { name: 'negativeRing', type: 'i32', byteLength: ring.byteLength }, bytes: new Uint8Array(ring.buffer) });
  }
  for (const name of JSON_SECTIONS) {
    const bytes = Buffer.from(JSON.stringify(c[name]), 'utf8');
    sections.push({ entry: { name, type: 'json', byteLength: bytes.length }, bytes });
  }
  let crc = 0;
  for (const s of sections) crc = crc32(s.bytes, crc);
  const header: SnapshotHeader = {
    format: 'starstream-embedded-snapshot',
    version: SNAPSHOT_VERSION,
    endianness: 'LE',
    limits: captured.limits,
    counts: {
      userSlots: c.userIds.length,
      itemSlots: c.itemIds.length,
      users: captured.users,
      items: captured.items,
      cooccurrenceEntries: c.cooccurrenceKeys.length,
      negatives: captured.negatives?.ring.length ?? 0,
    },
    negativesNext: captured.negatives?.next ?? null,
    meta: captured.meta,
    sections: sections.map((s) => s.entry),
    crc32: crc,
  };
  const headerBytes = Buffer.from(JSON.stringify(header), 'utf8');
  let total = pad8(PREFIX_BYTES + headerBytes.length);
  for (const s of sections) total += pad8(s.bytes.length);
  // Not zero-filled (every byte is written below, padding included): a fill would touch the pages twice.
  const out = Buffer.allocUnsafeSlow(total);
  out.write(SNAPSHOT_MAGIC, 0, 'latin1');
  out.writeUInt32LE(headerBytes.length, 8);
  out.writeUInt32LE(0, 12);
  headerBytes.copy(out, PREFIX_BYTES);
  let at = PREFIX_BYTES + headerBytes.length;
  out.fill(0, at, pad8(at));
  at = pad8(at);
  for (const s of sections) {
    out.set(s.bytes, at);
    out.fill(0, at + s.bytes.length, at + pad8(s.bytes.length));
    at += pad8(s.bytes.length);
  }
  return out;
}

/** True when `bytes` start like a format-2 snapshot. */
export function isSnapshotFile(bytes: Uint8Array): boolean {
  return bytes.length >= PREFIX_BYTES && Buffer.from(bytes.buffer, bytes.byteOffset, 8).toString('latin1') === SNAPSHOT_MAGIC;
}

/** Checks and parses a format-2 file; a file that is not one, or is torn or corrupted, is a `FatalError` naming `path`. */
export function decodeSnapshot(bytes: Uint8Array, path: string): DecodedSnapshot {
  const corrupt = (why: string): FatalError =>
    new FatalError('SNAPSHOT_CORRUPT', `snapshot ${path} is unreadable (${why}); restore a good copy or delete it to start with an empty state`);
  if (!isSnapshotFile(bytes)) throw corrupt('no STARSNP2 magic');
  const buf = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const headerLength = buf.readUInt32LE(8);
  if (PREFIX_BYTES + headerLength > buf.length) throw corrupt('truncated header');
  let header: SnapshotHeader;
  try {
    header = JSON.parse(buf.toString('utf8', PREFIX_BYTES, PREFIX_BYTES + headerLength)) as SnapshotHeader;
  } catch {
    throw corrupt('header is not JSON');
  }
  if (header.version !== SNAPSHOT_VERSION) {
    throw new FatalError('STORE_SCHEMA_MISMATCH', `snapshot ${path} has format version ${header.version}; this build reads ${SNAPSHOT_VERSION} (and 1)`);
  }
  if (header.endianness !== 'LE' || new Uint8Array(new Uint16Array([1]).buffer)[0] !== 1) {
    throw new FatalError('STORE_SCHEMA_MISMATCH', `snapshot ${path} is little-endian; this platform is not`);
  }
  const raw = new Map<string, { entry: SectionEntry; bytes: Uint8Array }>();
  let at = pad8(PREFIX_BYTES + headerLength);
  let crc = 0;
  for (const entry of header.sections) {
    if (at + entry.byteLength > buf.length) throw corrupt(`truncated at section ${entry.name}`);
    const bytes = buf.subarray(at, at + entry.byteLength);
    crc = crc32(bytes, crc);
    raw.set(entry.name, { entry, bytes });
    at += pad8(entry.byteLength);
  }
  if (crc !== header.crc32) throw corrupt('checksum mismatch');

  const section = (name: string): { entry: SectionEntry; bytes: Uint8Array } => {
    const s = raw.get(name);
    if (!s) throw corrupt(`section ${name} missing`);
    return s;
  };
  const binary = (name: string, length: number): ArrayBufferView => {
    const { entry, bytes } = section(name);
    if (entry.type === 'json') throw corrupt(`section ${name} is not binary`);
    const Ctor = ARRAY_OF[entry.type];
    // A copy on its own (aligned) buffer: the file's bytes may sit at any offset.
    const view = new Ctor(bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength) as ArrayBuffer) as ArrayBufferView & { length: number };
    if (view.length !== length) throw corrupt(`section ${name} holds ${view.length} values, expected ${length}`);
    return view;
  };
  const json = <T>(name: string): T => {
    const { entry, bytes } = section(name);
    if (entry.type !== 'json') throw corrupt(`section ${name} is not JSON`);
    return JSON.parse(Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('utf8')) as T;
  };

  const l = header.limits;
  const nu = header.counts.userSlots;
  const ni = header.counts.itemSlots;
  const entries = header.counts.cooccurrenceEntries;
  const width: Record<string, number> = {
    userExists: nu, userGen: nu, userVec: nu * l.dimension, userCount: nu, userFirst: nu, userLast: nu,
    recentItems: nu * l.userHistoryLength, recentAt: nu * l.userHistoryLength, recentLen: nu,
    consumed: nu * l.consumedFilterBytes,
    itemExists: ni, itemVec: ni * l.dimension, itemCount: ni, shortLog: ni, longLog: ni, itemFirst: ni, itemLast: ni,
    audienceUser: ni * l.itemAudienceLength, audienceAt: ni * l.itemAudienceLength, audienceLen: ni, audienceGen: ni * l.itemAudienceLength, hashA: ni, hashB: ni,
    cooccurrenceLengths: ni, cooccurrenceKeys: entries, cooccurrenceCounts: entries,
  };
  const columns: Record<string, unknown> = {};
  for (const [name] of BINARY) columns[name] = binary(name, width[name]!);
  for (const name of JSON_SECTIONS) columns[name] = json(name);
  const cols = columns as unknown as StateColumns;
  if (cols.userIds.length !== nu || cols.itemIds.length !== ni) throw corrupt('id tables disagree with the counts');
  const negatives =
    header.negativesNext === null
      ? null
      : { ring: Array.from(binary('negativeRing', header.counts.negatives) as Int32Array), next: header.negativesNext };
  return { header, columns: cols, negatives };
}

/**
 * Installs a decoded snapshot into `state` (which it replaces whole; no batch may be open). Returns how an
 * item slot of the snapshot maps to the state's (the identity when the columns were taken as they are), for
 * anything else that holds item slots (the negative ring).
 */
export function restoreSnapshot(state: CollaborativeState, snapshot: DecodedSnapshot, path: string): (slot: number) => number {
  const have = snapshotLimits(state.options);
  const want = snapshot.header.limits;
  for (const key of ['dimension', 'consumedFilterBytes', 'popularityShortHalfLifeMs', 'popularityLongHalfLifeMs'] as const) {
    if (have[key] !== want[key]) {
      throw new FatalError(
        'STORE_SCHEMA_MISMATCH',
        `snapshot ${path} was written with ${key} ${want[key]}; this store has ${have[key]} (vectors, consumed filters and popularity would not carry over: ` +
          `restore the old setting or delete the snapshot to start empty)`,
      );
    }
  }
  const same = (Object.keys(want) as (keyof SnapshotLimits)[]).every((k) => have[k] === want[k]);
  if (same) {
    state.replaceColumns(snapshot.columns);
    return (slot) => slot;
  }
  // Other limits (history, audience, co-occurrence bound): read the snapshot as it was laid
  // out, then carry every entity over through its profile, which the state cuts to its own limits.
  const laidOut = new CollaborativeState({ ...state.options, ...want });
  laidOut.replaceColumns(snapshot.columns);
  for (const u of laidOut.users.liveSlots()) if (laidOut.userExists[u] === 1) state.setUser(laidOut.userProfile(u));
  for (const i of laidOut.items.liveSlots()) if (laidOut.itemExists[i] === 1) state.setItem(laidOut.itemProfile(i));
  return (slot) => state.items.slotOf(laidOut.items.idOf(slot));
}
