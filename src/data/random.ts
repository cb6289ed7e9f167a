/**
 * A small, fast, seeded pseudo-random number generator for everything in starstream that must be reproducible:
 * synthetic streams, seeded shuffles, negative sampling in evaluations, test fixtures.
 *
 * The core is sfc32 (Chris Doty-Humphrey's "small fast counting" generator from PractRand): 128 bits of state,
 * only 32-bit adds, xors and shifts (so it stays in V8's small-integer fast path), period at least 2^32, and it
 * passes PractRand and BigCrush. It is not cryptographic. Seeds go through splitmix32 first, so nearby seeds
 * (1, 2, 3…) give unrelated streams.
 *
 * There is deliberately no shared instance: callers create one with {@link createRng} and pass it down, and
 * independent parts of a computation take their own {@link Rng.fork | fork} so adding a draw in one part does
 * not shift every number in the others.
 */

/** A seed: any integer (taken modulo 2^32) or any string (hashed). */
export type Seed = number | string;

/** A seeded random source. Every method advances the state; the same seed always yields the same sequence. */
export interface Rng {
  /** The seed this generator was created from, as a string; {@link Rng.fork} derives child seeds from it. */
  readonly seed: string;
  /** Uniform float in [0, 1) with 32 bits of resolution. */
  next(): number;
  /** Uniform unsigned 32-bit integer. */
  uint32(): number;
  /**
   * Uniform integer in [0, n). `n` must be a positive integer; the bias of the multiply method is below
   * n / 2^32, which is invisible for the sizes used here (n ≤ a few million).
   */
  int(n: number): number;
  /** Uniform integer in [min, max], both inclusive. */
  intBetween(min: number, max: number): number;
  /** `true` with probability `p`. */
  bool(p: number): boolean;
  /** Standard normal deviate (mean 0, variance 1), Box–Muller with the second value cached. */
  normal(): number;
  /** Exponential deviate with the given mean. */
  exponential(mean: number): number;
  /** Uniformly chosen element; throws on an empty array. */
  pick<T>(items: readonly T[]): T;
  /** Shuffles `items` in place (Fisher–Yates) and returns it. */
  shuffle<T>(items: T[]): T[];
  /**
   * An independent generator whose seed is derived from this one's seed and `label`. It does not consume
   * state from this generator, so forks are stable however much the parent has been used.
   */
  fork(label: string): Rng;
}

/** Creates a generator from a seed. */
export function createRng(seed: Seed): Rng {
  return new Sfc32(seedKey(seed));
}

/** FNV-1a over UTF-16 code units, then a murmur3 finaliser so that similar strings spread over all 32 bits. */
export function hashString(text: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < text.length; i++) {
    h ^= text.charCodeAt(i);
    h = Math.imul(h, 0x01000193);
  }
  return fmix32(h);
}

function seedKey(seed: Seed): string {
  if (typeof seed === 'string') return seed;
  if (!Number.isFinite(seed)) throw new RangeError(`seed must be finite, got ${seed}`);
  return String(Math.trunc(seed) >>> 0);
}

/** murmur3's 32-bit finaliser: spreads the bits of `x` over the whole word. */
export function fmix32(x: number): number {
  let h = x >>> 0;
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return h >>> 0;
}

const TWO_POW_32 = 4294967296;

class Sfc32 implements Rng {
  readonly seed: string;
  private a: number;
  private b: number;
  private c: number;
  private d = 1;
  private spare = Number.NaN;

  constructor(seed: string) {
    this.seed = seed;
    // Numeric seeds hash their decimal text too, so `createRng(7)` and `createRng('7')` agree.
    let s = hashString(seed);
    const splitmix = (): number => {
      s = (s + 0x9e3779b9) | 0;
      return fmix32(s);
    };
    this.a = splitmix();
    this.b = splitmix();
    this.c = splitmix();
    // sfc32's authors discard the first outputs so the counter has mixed into every word.
    for (let i = 0; i < 12; i++) this.uint32();
  }

  uint32(): number {
    const t = (((this.a + this.b) | 0) + this.d) | 0;
    this.d = (this.d + 1) | 0;
    this.a = this.b ^ (this.b >>> 9);
    this.b = (this.c + (this.c << 3)) | 0;
    this.c = (this.c << 21) | (this.c >>> 11);
    this.c = (this.c + t) | 0;
    return t >>> 0;
  }

  next(): number {
    return this.uint32() / TWO_POW_32;
  }

  int(n: number): number {
    return Math.floor(this.next() * n);
  }

  intBetween(min: number, max: number): number {
    return min + this.int(max - min + 1);
  }

  bool(p: number): boolean {
    return this.next() < p;
  }

  normal(): number {
    if (!Number.isNaN(this.spare)) {
      const value = this.spare;
      this.spare = Number.NaN;
      return value;
    }
    // 1 - next() lies in (0, 1], so the logarithm is finite.
    const radius = Math.sqrt(-2 * Math.log(1 - this.next()));
    const angle = 2 * Math.PI * this.next();
    this.spare = radius * Math.sin(angle);
    return radius * Math.cos(angle);
  }

  exponential(mean: number): number {
    return -mean * Math.log(1 - this.next());
  }

  pick<T>(items: readonly T[]): T {
    if (items.length === 0) throw new RangeError('cannot pick from an empty array');
    return items[this.int(items.length)] as T;
  }

  shuffle<T>(items: T[]): T[] {
    for (let i = items.length - 1; i > 0; i--) {
      const j = this.int(i + 1);
      const tmp = items[i] as T;
      items[i] = items[j] as T;
      items[j] = tmp;
    }
    return items;
  }

  fork(label: string): Rng {
    return new Sfc32(`${this.seed}/${label}`);
  }
}
