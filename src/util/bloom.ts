/**
 * A fixed-size Bloom filter over strings, stored as plain bytes so a store can keep it in a payload.
 * Four probes from two FNV-1a hashes (Kirsch–Mitzenmacher double hashing). False positives only: an item
 * reported as consumed may not have been, never the other way round.
 */

const PROBES = 4;

export function createBloom(bytes: number): Uint8Array {
  return new Uint8Array(bytes);
}

export function bloomAdd(filter: Uint8Array, key: string): void {
  const [h1, h2] = hashes(key);
  bloomAddHashed(filter, 0, filter.length, h1, h2);
}

/**
 * `bloomAdd` of a key whose `bloomHashes` the caller kept, into the `bytes` bytes of `arena` from `offset`:
 * the typed state keeps every user's filter in one arena and each item's two hashes in columns.
 */
export function bloomAddHashed(arena: Uint8Array, offset: number, bytes: number, h1: number, h2: number): void {
  const bits = bytes * 8;
  if (bits === 0) return;
  for (let i = 0; i < PROBES; i++) {
    const bit = (h1 + i * h2) % bits;
    arena[offset + (bit >>> 3)]! |= 1 << (bit & 7);
  }
}

/** The two hashes `bloomAdd` probes with, for callers that add one key to many filters. */
export function bloomHashes(key: string): [number, number] {
  return hashes(key);
}

export function bloomHas(filter: Uint8Array, key: string): boolean {
  const bits = filter.length * 8;
  if (bits === 0) return false;
  const [h1, h2] = hashes(key);
  for (let i = 0; i < PROBES; i++) {
    const bit = (h1 + i * h2) % bits;
    if ((filter[bit >>> 3]! & (1 << (bit & 7))) === 0) return false;
  }
  return true;
}

function hashes(key: string): [number, number] {
  let a = 0x811c9dc5;
  let b = 0x01000193 ^ 0x5bd1e995;
  for (let i = 0; i < key.length; i++) {
    const c = key.charCodeAt(i);
    a = Math.imul(a ^ c, 0x01000193);
    b = Math.imul(b ^ c, 0x5bd1e995);
    b ^= b >>> 15;
  }
  // `| 1` keeps the stride odd so the probes differ.
  return [a >>> 0, (b | 1) >>> 0];
}
