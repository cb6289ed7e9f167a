import { buildAliasSegments, buildAliasTable, type AliasSegments } from './alias.ts';
import { createRng, type Rng } from './random.ts';
import type { SyntheticOptions } from './synthetic-options.ts';
import { categoryName } from './synthetic-names.ts';

/**
 * The latent world behind a synthetic stream: what each item is, who each user is, and the samplers that turn
 * tastes into item draws. Everything lives in flat typed arrays (O(users + items) memory, no per-entity
 * objects) and is derived from the seed through named forks, so the catalogue and the stream rebuild exactly
 * the same world independently.
 */

/** Most categories an item can have. */
export const MAX_ITEM_CATEGORIES = 3;

/** Item-side latent structure. */
export interface ItemWorld {
  readonly count: number;
  readonly categoryNames: readonly string[];
  /** Relative size of each category; index 0 is the largest. */
  readonly categoryWeights: Float64Array;
  /** Categories of item `i` at `i * MAX_ITEM_CATEGORIES …`, primary first, padded with -1. */
  readonly itemCategories: Int32Array;
  /** Zipf–Mandelbrot weight of each item, `1 / (rank + q)^s`, over a random permutation of ranks. */
  readonly popularity: Float64Array;
  /** When each item becomes available; later ids are released later. */
  readonly releaseMs: Float64Array;
  /** Latent quality shifting ratings, roughly N(0, 0.8). */
  readonly quality: Float32Array;
  /** Price in cents. */
  readonly priceCents: Int32Array;
  /** Index of the first item released after the start; items below it exist from `startMs`. */
  readonly firstNewItem: number;
}

/** The draws the stream makes, all O(1). */
export interface ItemSamplers {
  /** Segment `c`: items listing category `c` (secondary listings at half weight), popularity-weighted. */
  readonly byCategory: AliasSegments;
  /** Segment `g`: the items of neighbourhood `g`, popularity-weighted. */
  readonly byNeighbourhood: AliasSegments;
  /** Neighbourhood of each item. */
  readonly neighbourhoodOf: Int32Array;
  /** All items by popularity. */
  readonly global: { sample(rng: Rng): number };
  /** Categories by size, for drawing tastes. */
  readonly category: { sample(rng: Rng): number };
}

/** User-side latent structure. */
export interface UserWorld {
  readonly count: number;
  /** Most taste clusters a user can have (the stride of `tastes`). */
  readonly maxTastes: number;
  /** Taste categories of user `u` at `u * maxTastes …`, the first `tasteCount[u]` valid. Mutated by drift. */
  readonly tastes: Int32Array;
  /** Weight of each taste slot. */
  readonly tasteWeights: Float64Array;
  readonly tasteCount: Uint8Array;
  /** When the user's first session starts. */
  readonly firstSessionMs: Float64Array;
  /** Mean pause between the user's sessions, calibrated so the stream fills its span. */
  readonly meanSessionGapMs: Float64Array;
  /** Per-user rating bias, roughly N(0, 0.5). */
  readonly ratingBias: Float32Array;
  /** Whether the user is one of the late arrivals. */
  readonly coldStart: Uint8Array;
}

/** Builds the item side from the options' seed. */
export function buildItemWorld(opts: SyntheticOptions): ItemWorld {
  const rng = createRng(opts.seed).fork('items');
  const n = opts.items;
  const categoryCount = opts.categories;
  const categoryWeights = new Float64Array(categoryCount);
  // Category sizes are mildly skewed (Zipf 0.6): a few big departments and a tail of niches.
  for (let c = 0; c < categoryCount; c++) categoryWeights[c] = 1 / Math.pow(c + 1, 0.6);
  const categorySampler = buildAliasTable(categoryWeights);

  const itemCategories = new Int32Array(n * MAX_ITEM_CATEGORIES).fill(-1);
  for (let i = 0; i < n; i++)
    assignCategories(rng, categorySampler.sample(rng), categoryCount, itemCategories, i);

  const ranks = rng.shuffle(Array.from({ length: n }, (_, i) => i + 1));
  const popularity = new Float64Array(n);
  for (let i = 0; i < n; i++)
    popularity[i] = 1 / Math.pow((ranks[i] as number) + opts.zipfOffset, opts.zipfExponent);

  const firstNewItem = Math.max(1, Math.ceil(n * (1 - opts.newItemShare)));
  const releaseMs = new Float64Array(n).fill(opts.startMs);
  const newCount = n - firstNewItem;
  // Evenly spaced with jitter over the first 95% of the span, so ids stay in release order and the last
  // releases still get some traffic.
  for (let k = 0; k < newCount; k++) {
    releaseMs[firstNewItem + k] = opts.startMs + (0.95 * opts.durationMs * (k + rng.next())) / newCount;
  }

  const quality = new Float32Array(n);
  const priceCents = new Int32Array(n);
  for (let i = 0; i < n; i++) {
    quality[i] = 0.8 * rng.normal();
    priceCents[i] = Math.round(Math.exp(3 + 0.8 * rng.normal()) * 100);
  }

  const categoryNames = Array.from({ length: categoryCount }, (_, c) => categoryName(c));
  return {
    count: n,
    categoryNames,
    categoryWeights,
    itemCategories,
    popularity,
    releaseMs,
    quality,
    priceCents,
    firstNewItem,
  };
}

/**
 * Primary category from the size distribution; with probability 0.35 a second and 0.1 a third from the
 * primary's "adjacent" categories (the next three indices), so categories co-occur in a structured way a
 * latent-factor model can pick up.
 */
function assignCategories(
  rng: Rng,
  primary: number,
  categoryCount: number,
  out: Int32Array,
  item: number,
): void {
  const base = item * MAX_ITEM_CATEGORIES;
  out[base] = primary;
  if (categoryCount < 2) return;
  let filled = 1;
  const extras = rng.bool(0.35) ? (rng.bool(0.3) ? 2 : 1) : 0;
  for (let attempt = 0; filled <= extras && attempt < 6; attempt++) {
    const candidate = (primary + 1 + rng.int(Math.min(3, categoryCount - 1))) % categoryCount;
    let seen = false;
    for (let k = 0; k < filled; k++) if (out[base + k] === candidate) seen = true;
    if (!seen) out[base + filled++] = candidate;
  }
}

/** Builds the samplers the stream draws items from. */
export function buildItemSamplers(world: ItemWorld, opts: SyntheticOptions): ItemSamplers {
  const rng = createRng(opts.seed).fork('neighbourhoods');
  return {
    byCategory: categorySegments(world),
    ...neighbourhoods(world, opts.neighbourhoodSize, rng),
    global: buildAliasTable(world.popularity),
    category: buildAliasTable(world.categoryWeights),
  };
}

function categorySegments(world: ItemWorld): AliasSegments {
  const categoryCount = world.categoryNames.length;
  const offsets = new Int32Array(categoryCount + 1);
  const cats = world.itemCategories;
  for (let k = 0; k < cats.length; k++) {
    const c = cats[k] as number;
    if (c >= 0) offsets[c + 1] = (offsets[c + 1] as number) + 1;
  }
  for (let c = 0; c < categoryCount; c++)
    offsets[c + 1] = (offsets[c + 1] as number) + (offsets[c] as number);
  const cursor = offsets.slice(0, categoryCount);
  const values = new Int32Array(offsets[categoryCount] as number);
  const weights = new Float64Array(values.length);
  for (let k = 0; k < cats.length; k++) {
    const c = cats[k] as number;
    if (c < 0) continue;
    const item = Math.floor(k / MAX_ITEM_CATEGORIES);
    const at = cursor[c] as number;
    cursor[c] = at + 1;
    values[at] = item;
    // A secondary listing is a weaker signal than the primary one.
    weights[at] = (world.popularity[item] as number) * (k % MAX_ITEM_CATEGORIES === 0 ? 1 : 0.5);
  }
  return buildAliasSegments(values, weights, offsets);
}

/**
 * Chops each primary category's items, shuffled, into neighbourhoods of `size`: the latent "bought together"
 * sets that give item-to-item co-occurrence its signal. Shuffling mixes new and old items, so new items
 * inherit co-occurrence with established ones as soon as they are released.
 */
function neighbourhoods(
  world: ItemWorld,
  size: number,
  rng: Rng,
): { byNeighbourhood: AliasSegments; neighbourhoodOf: Int32Array } {
  const categoryCount = world.categoryNames.length;
  const members: number[][] = Array.from({ length: categoryCount }, () => []);
  for (let i = 0; i < world.count; i++)
    members[world.itemCategories[i * MAX_ITEM_CATEGORIES] as number]?.push(i);
  const values = new Int32Array(world.count);
  const weights = new Float64Array(world.count);
  const neighbourhoodOf = new Int32Array(world.count);
  const offsets: number[] = [0];
  let at = 0;
  for (const list of members) {
    rng.shuffle(list);
    for (let k = 0; k < list.length; k++) {
      if (k > 0 && k % size === 0) offsets.push(at);
      const item = list[k] as number;
      neighbourhoodOf[item] = offsets.length - 1;
      values[at] = item;
      weights[at] = world.popularity[item] as number;
      at++;
    }
    if (list.length > 0) offsets.push(at);
  }
  return { byNeighbourhood: buildAliasSegments(values, weights, Int32Array.from(offsets)), neighbourhoodOf };
}

/** Builds the user side: tastes, arrival times and session rates. */
export function buildUserWorld(opts: SyntheticOptions, samplers: ItemSamplers): UserWorld {
  const rng = createRng(opts.seed).fork('users');
  const n = opts.users;
  const maxTastes = Math.min(opts.tasteClusters.max, opts.categories);
  const minTastes = Math.min(opts.tasteClusters.min, maxTastes);
  const tastes = new Int32Array(n * maxTastes).fill(-1);
  const tasteWeights = new Float64Array(n * maxTastes);
  const tasteCount = new Uint8Array(n);
  const ratingBias = new Float32Array(n);
  const coldStart = new Uint8Array(n);
  const firstSeenMs = new Float64Array(n);
  const activity = new Float64Array(n);
  let totalActivity = 0;
  for (let u = 0; u < n; u++) {
    const count = rng.intBetween(minTastes, maxTastes);
    tasteCount[u] = count;
    for (let k = 0; k < count; k++) {
      tastes[u * maxTastes + k] = drawNewTaste(rng, samplers, tastes, u * maxTastes, k);
      // A dominant taste and minor ones, like real profiles.
      tasteWeights[u * maxTastes + k] = 0.2 + rng.next();
    }
    ratingBias[u] = 0.5 * rng.normal();
    coldStart[u] = rng.bool(opts.coldStartShare) ? 1 : 0;
    firstSeenMs[u] = coldStart[u]
      ? opts.startMs + opts.durationMs * (1 / 3 + (0.9 - 1 / 3) * rng.next())
      : opts.startMs;
    // Log-normal activity: most users are light, a few are very heavy.
    activity[u] = Math.exp(rng.normal());
    totalActivity += activity[u] as number;
  }
  const firstSessionMs = new Float64Array(n);
  const meanSessionGapMs = new Float64Array(n);
  const endMs = opts.startMs + opts.durationMs;
  for (let u = 0; u < n; u++) {
    const expectedSessions = (opts.events * (activity[u] as number)) / totalActivity / opts.sessionLengthMean;
    const activeMs = endMs - (firstSeenMs[u] as number);
    const gap = activeMs / Math.max(expectedSessions, 1e-9);
    meanSessionGapMs[u] = gap;
    // Established users are mid-stream at the start (memoryless first arrival); late users start on arrival.
    firstSessionMs[u] = coldStart[u] ? (firstSeenMs[u] as number) : opts.startMs + rng.exponential(gap);
  }
  return {
    count: n,
    maxTastes,
    tastes,
    tasteWeights,
    tasteCount,
    firstSessionMs,
    meanSessionGapMs,
    ratingBias,
    coldStart,
  };
}

/** A category not yet among the first `filled` slots at `base`; gives up after a few tries (tiny worlds). */
export function drawNewTaste(
  rng: Rng,
  samplers: ItemSamplers,
  tastes: Int32Array,
  base: number,
  filled: number,
): number {
  let candidate = samplers.category.sample(rng);
  for (let attempt = 0; attempt < 8; attempt++) {
    let seen = false;
    for (let k = 0; k < filled; k++) if (tastes[base + k] === candidate) seen = true;
    if (!seen) return candidate;
    candidate = samplers.category.sample(rng);
  }
  return candidate;
}
