import { EVENT_TYPES, type EventType } from '../domain/events.ts';
import { ConfigError } from '../errors/index.ts';
import type { Seed } from './random.ts';

/** Relative shares of each event type; they need not sum to 1 (they are normalised). */
export type TypeMix = Readonly<Record<EventType, number>>;

/**
 * Everything that shapes a synthetic world and its stream. The catalogue and the stream built from the same
 * options (same seed) always agree.
 */
export interface SyntheticOptions {
  /** Number of users (`u0 … u{users-1}`). @default 1000 */
  readonly users: number;
  /** Number of items (`i0 … i{items-1}`); higher ids are released later. @default 2000 */
  readonly items: number;
  /** Exact number of events the stream yields. @default 100000 */
  readonly events: number;
  /** Number of named categories. @default 20 */
  readonly categories: number;
  /** Seed of every random choice. @default 1 */
  readonly seed: Seed;
  /** Time of the stream's start, epoch milliseconds. @default Date.UTC(2024, 0, 1) */
  readonly startMs: number;
  /**
   * Intended span of the stream. Session rates are calibrated so the events fill it; the last event lands
   * within a few per cent of `startMs + durationMs` (exactly `events` events are always produced). Must be at
   * least `events` so timestamps can strictly increase at 1 ms resolution. @default 30 days
   */
  readonly durationMs: number;
  /** How many categories a user is interested in, drawn uniformly in [min, max]. @default { min: 2, max: 3 } */
  readonly tasteClusters: { readonly min: number; readonly max: number };
  /**
   * Per session, the chance that one of the user's taste clusters is replaced by another category.
   * @default 0.05
   */
  readonly driftProbability: number;
  /** Mean number of events in a session (geometric, at least 1). @default 8 */
  readonly sessionLengthMean: number;
  /** Share of users who first appear late (uniformly in the last two thirds of the span). @default 0.1 */
  readonly coldStartShare: number;
  /** Share of items released during the stream rather than available at the start. @default 0.2 */
  readonly newItemShare: number;
  /** Event type shares. @default { view: 0.6, click: 0.2, cart: 0.1, purchase: 0.05, rating: 0.05 } */
  readonly typeMix: TypeMix;
  /**
   * Exponent `s` of the Zipf–Mandelbrot law `1 / (rank + zipfOffset)^s` over item popularity ranks; larger
   * means more of the traffic goes to the head. @default 1.0
   */
  readonly zipfExponent: number;
  /**
   * Offset `q` of the Zipf–Mandelbrot law. It flattens the very top (real catalogues have a head of
   * comparably popular items, not one runaway item) while keeping the long tail: with the defaults the top
   * 10% of items take about half of the events but the top 10 only about 7%. @default 20
   */
  readonly zipfOffset: number;
  /** Items per latent neighbourhood (items that tend to be consumed together). @default 15 */
  readonly neighbourhoodSize: number;
  /**
   * Within a session, the chance that the next item comes from the previous item's neighbourhood.
   * @default 0.25
   */
  readonly neighbourProbability: number;
  /** The chance that an event ignores the user's tastes and follows global popularity. @default 0.1 */
  readonly exploreProbability: number;
  /**
   * The chance that a `cart` or `purchase` event is about the item the session touched just before.
   * @default 0.5
   */
  readonly funnelProbability: number;
}

/** What callers pass: any subset of the options; the rest take their defaults. */
export type SyntheticInput = Partial<SyntheticOptions>;

const DAY_MS = 86_400_000;

/** The defaults: a small shop, quick enough for unit tests (100k events in well under a second). */
export const DEFAULT_SYNTHETIC_OPTIONS: SyntheticOptions = Object.freeze({
  users: 1000,
  items: 2000,
  events: 100_000,
  categories: 20,
  seed: 1,
  startMs: Date.UTC(2024, 0, 1),
  durationMs: 30 * DAY_MS,
  tasteClusters: Object.freeze({ min: 2, max: 3 }),
  driftProbability: 0.05,
  sessionLengthMean: 8,
  coldStartShare: 0.1,
  newItemShare: 0.2,
  typeMix: Object.freeze({ view: 0.6, click: 0.2, cart: 0.1, purchase: 0.05, rating: 0.05 }),
  zipfExponent: 1.0,
  zipfOffset: 20,
  neighbourhoodSize: 15,
  neighbourProbability: 0.25,
  exploreProbability: 0.1,
  funnelProbability: 0.5,
});

/** Fills defaults, validates every field (a `ConfigError` names the first bad one) and freezes the result. */
export function resolveSyntheticOptions(input: SyntheticInput = {}): SyntheticOptions {
  const o: SyntheticOptions = { ...DEFAULT_SYNTHETIC_OPTIONS, ...input };
  positiveInt('users', o.users);
  positiveInt('items', o.items);
  nonNegativeInt('events', o.events);
  positiveInt('categories', o.categories);
  if (typeof o.seed !== 'string' && !Number.isFinite(o.seed))
    fail('seed', 'must be a finite number or a string');
  nonNegativeInt('startMs', o.startMs);
  positiveInt('durationMs', o.durationMs);
  if (o.durationMs < o.events)
    fail('durationMs', 'must be at least `events` so timestamps can strictly increase');
  positiveInt('tasteClusters.min', o.tasteClusters.min);
  positiveInt('tasteClusters.max', o.tasteClusters.max);
  if (o.tasteClusters.max < o.tasteClusters.min) fail('tasteClusters.max', 'must be >= tasteClusters.min');
  probability('driftProbability', o.driftProbability);
  if (!(o.sessionLengthMean >= 1) || !Number.isFinite(o.sessionLengthMean))
    fail('sessionLengthMean', 'must be >= 1');
  probability('coldStartShare', o.coldStartShare);
  probability('newItemShare', o.newItemShare);
  if (o.newItemShare === 1) fail('newItemShare', 'must be < 1 so some items exist at the start');
  validateTypeMix(o.typeMix);
  if (!(o.zipfExponent >= 0) || !Number.isFinite(o.zipfExponent))
    fail('zipfExponent', 'must be finite and >= 0');
  if (!(o.zipfOffset >= 0) || !Number.isFinite(o.zipfOffset)) fail('zipfOffset', 'must be finite and >= 0');
  positiveInt('neighbourhoodSize', o.neighbourhoodSize);
  probability('neighbourProbability', o.neighbourProbability);
  probability('exploreProbability', o.exploreProbability);
  probability('funnelProbability', o.funnelProbability);
  return Object.freeze({
    ...o,
    tasteClusters: Object.freeze({ ...o.tasteClusters }),
    typeMix: Object.freeze({ ...o.typeMix }),
  });
}

function validateTypeMix(mix: TypeMix): void {
  let total = 0;
  for (const type of EVENT_TYPES) {
    const share = mix[type];
    if (!(share >= 0) || !Number.isFinite(share)) fail(`typeMix.${type}`, 'must be finite and >= 0');
    total += share;
  }
  if (!(total > 0)) fail('typeMix', 'at least one share must be > 0');
}

function fail(field: string, message: string): never {
  throw new ConfigError(`synthetic.${field}`, message);
}

function positiveInt(field: string, value: number): void {
  if (!Number.isSafeInteger(value) || value < 1) fail(field, `must be a positive integer, got ${value}`);
}

function nonNegativeInt(field: string, value: number): void {
  if (!Number.isSafeInteger(value) || value < 0) fail(field, `must be an integer >= 0, got ${value}`);
}

function probability(field: string, value: number): void {
  if (!(value >= 0 && value <= 1)) fail(field, `must be in [0, 1], got ${value}`);
}
