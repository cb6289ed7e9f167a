import type { Config } from '../../config/schema.ts';
import type { ScoringCase } from '../../domain/evidence.ts';
import type { Logger } from '../../logging/logger.ts';
import { DEFAULT_BASELINE_WEIGHTS, type BaselineWeights } from '../baseline/scorer.ts';
import type { Scorer } from '../port.ts';
import { BLEND, decide, DEFAULT_GUARD_OPTIONS, WindowedHitRates, type GuardOptions, type ServingMode, type WindowState } from './guard.ts';
import { namedWeights, ONLINE_TERMS, POPULARITY_TERM, startWeights, TERM_COUNT, termsInto, type OnlineTerm } from './terms.ts';

/**
 * The online blend: the baseline's linear blend of the CST features (`terms.ts`), started from the baseline's
 * weights and updated from what users choose next, behind a guard that serves the best single signal instead
 * while the blend trails it.
 *
 * The join (the same idea as `OnlineHitRate` in `src/eval/online.ts`, read from the cases themselves so that it
 * works wherever the scorer serves, the pipeline or the eval harness): the scorer keeps each user's last scored
 * list. When the user's next list arrives, its `user.interactionCount` has grown by d and the d newest of
 * `user.recentItems` are what the user took since; the earliest of them that was a candidate of the kept list is
 * the positive, and the kept list's top `k` by the blend (what it showed, the positive left out) are the
 * negatives. A list with the same interaction count as the kept one is the same moment (the eval harness scores
 * one event in two protocols): the one with more candidates is kept. An older one (scored out of order) is
 * scored, not joined.
 *
 * The update is one step of pairwise logistic regression over (positive, negative) pairs, with an L2 pull
 * toward the start weights and a bounded step. Every joined outcome also ranks the kept list by each single
 * term and by the start weights; `guard.ts` compares their hit rates over a window and decides what serves: the
 * blend, or in its place the best single term (or the start weights, should learning itself have gone wrong).
 *
 * Leakage: scores for a list at time t use the weights as they were after every update joined before t (a ring
 * of the last `history` weight vectors). The pipeline scores in time order and always reads the newest; the eval
 * harness scores its two protocols in batches, out of order by up to a batch, and reads the past.
 *
 * Memory: the kept lists of at most `maxPendingUsers` users (least recently active forgotten; ~4 KiB each for
 * 100 candidates), `history × 2 × 9` doubles, the window's `window × 11` bytes.
 */

export interface OnlineBlendOptions {
  /**
   * `listwise`: softmax over the whole joined list (the loss the baseline's weights were fitted with);
   * `pairwise`: logistic over (positive, each of the top k shown). @default 'listwise'
   */
  readonly loss: 'listwise' | 'pairwise';
  /** Step size of the pairwise logistic update. @default 0.005 */
  readonly learningRate: number;
  /** Strength of the pull toward the start weights, per update. @default 0.02 */
  readonly l2: number;
  /** The list a user is shown and the hit cut-off of the guard: the top k. @default 10 */
  readonly k: number;
  /** Largest L2 norm of one update. @default 0.05 */
  readonly maxStep: number;
  /** Users whose last list is kept for the join. @default 10000 */
  readonly maxPendingUsers: number;
  /** Past weight vectors kept for lists scored out of time order. @default 4096 */
  readonly history: number;
  readonly guard: GuardOptions;
  /** Start weights. @default DEFAULT_BASELINE_WEIGHTS */
  readonly start: BaselineWeights;
}

export const DEFAULT_ONLINE_BLEND_OPTIONS: OnlineBlendOptions = {
  loss: 'listwise',
  learningRate: 0.005,
  l2: 0.02,
  k: 10,
  maxStep: 0.05,
  maxPendingUsers: 10_000,
  history: 4_096,
  guard: DEFAULT_GUARD_OPTIONS,
  start: DEFAULT_BASELINE_WEIGHTS,
};

export const ONLINE_BLEND_VERSION = 'online-1';

/** The format of `OnlineBlendScorer.checkpointAttachment`'s state. */
export const ONLINE_BLEND_STATE_VERSION = 'online-blend-state-1';

export interface OnlineBlendState {
  readonly version: typeof ONLINE_BLEND_STATE_VERSION;
  /** The start weights it learned from (a restart with other ones starts again). */
  readonly start: number[];
  readonly weights: number[];
  readonly mode: ServingMode;
  readonly window: WindowState;
  readonly cases: number;
  readonly unmatched: number;
}

/** Rankers the guard tracks, in this order: the learned blend, the start weights, then one per term. */
export const TRACKED_RANKERS: readonly string[] = ['blend', 'start', ...ONLINE_TERMS];
const BLEND_RANKER = 0;
const START_RANKER = 1;
/**
 * What may serve in the blend's place (`ServingMode.signal` indexes this): the start weights (learning that
 * went wrong falls back to where it began) and each single term.
 */
export const ALTERNATIVES: readonly string[] = ['start', ...ONLINE_TERMS];
const FIRST_ALTERNATIVE = START_RANKER;
const FIRST_TERM = 2;

/** The guard changed what serves. */
export interface GuardChange {
  /** `blend`, `start` or a term name. */
  readonly from: string;
  readonly to: string;
  /** Joined outcomes so far. */
  readonly outcomes: number;
  readonly blendHitRate: number;
  /** Window hit rate of what serves now (the blend's when back to the blend). */
  readonly servingHitRate: number;
}

/** The window at one check: hit rates per tracked ranker and what serves. */
export interface WindowCheck {
  readonly outcomes: number;
  readonly serving: string;
  readonly hitRates: Readonly<Record<string, number>>;
}

export interface OnlineBlendHooks {
  /** Logs each change of what serves (warn on a fallback, info on the way back). */
  readonly logger?: Logger;
  /** Each change of what serves (for a metric). */
  readonly onGuardChange?: (change: GuardChange) => void;
  /** Every `guard.checkEvery` outcomes once the window has `guard.minOutcomes` (for gauges). */
  readonly onCheck?: (check: WindowCheck) => void;
}

export interface OnlineBlendStats {
  readonly cases: number;
  /** Joins whose positive was a candidate of the kept list: the outcomes learned from. */
  readonly outcomes: number;
  /** Joins whose positive was not among the kept list's candidates (nothing to learn). */
  readonly unmatched: number;
  /** Lists scored at a time older than the kept history reaches (read the oldest kept weights). */
  readonly beyondHistory: number;
  readonly serving: string;
  readonly weights: Record<OnlineTerm, number>;
  readonly hitRates: Readonly<Record<string, number>>;
  readonly guardChanges: readonly GuardChange[];
  /** The window at each check, the first `MAX_CHECKS_KEPT`. */
  readonly checks: readonly WindowCheck[];
}

const MAX_CHECKS_KEPT = 5_000;
const MAX_CHANGES_KEPT = 1_000;
/** Tie-break of the single-signal rankings, as in `src/eval/systems.ts`. */
const TIE_BREAK = 1e-6;

interface KeptList {
  readonly count: number;
  readonly ids: readonly string[];
  /** Terms, `TERM_COUNT` per candidate. */
  readonly x: Float32Array;
  /** The learned blend's scores when it was served. */
  readonly blend: Float32Array;
}

export class OnlineBlendScorer implements Scorer {
  readonly readsSentences = false;
  private readonly options: OnlineBlendOptions;
  private readonly w0: Float64Array;
  private readonly w: Float64Array;
  /** What serves: `w`; in its place the start weights, or a single term with the tie-break. */
  private readonly v: Float64Array;
  private mode: ServingMode = BLEND;
  private readonly kept = new Map<string, KeptList>();
  private readonly rates: WindowedHitRates;
  private readonly past: WeightHistory;
  private readonly changes: GuardChange[] = [];
  private readonly checkLog: WindowCheck[] = [];
  private cases = 0;
  private unmatched = 0;
  private beyondHistory = 0;

  constructor(
    options: Partial<OnlineBlendOptions> = {},
    private readonly hooks: OnlineBlendHooks = {},
  ) {
    this.options = { ...DEFAULT_ONLINE_BLEND_OPTIONS, ...options, guard: { ...DEFAULT_GUARD_OPTIONS, ...options.guard } };
    this.w0 = startWeights(this.options.start);
    this.w = Float64Array.from(this.w0);
    this.v = Float64Array.from(this.w0);
    this.rates = new WindowedHitRates(TRACKED_RANKERS.length, this.options.guard.window);
    this.past = new WeightHistory(this.options.history, this.w0);
  }

  /** `online-1` while the blend serves, `online-1+<term>` (or `+start`) while the guard has another serve instead. */
  get modelVersion(): string {
    return this.mode.kind === 'blend' ? ONLINE_BLEND_VERSION : `${ONLINE_BLEND_VERSION}+${ALTERNATIVES[this.mode.signal]}`;
  }

  async score(cases: readonly ScoringCase[]): Promise<Float32Array[]> {
    return cases.map((c) => this.scoreOne(c));
  }

  async close(): Promise<void> {
    this.kept.clear();
  }

  /** What serves now (`blend`, `start` or a term name). */
  get serving(): string {
    return this.mode.kind === 'blend' ? 'blend' : ALTERNATIVES[this.mode.signal]!;
  }

  stats(): OnlineBlendStats {
    return {
      cases: this.cases,
      outcomes: this.rates.total,
      unmatched: this.unmatched,
      beyondHistory: this.beyondHistory,
      serving: this.serving,
      weights: namedWeights(this.w),
      hitRates: this.windowRates(),
      guardChanges: [...this.changes],
      checks: [...this.checkLog],
    };
  }

  /**
   * What a checkpoint carries (`EmbeddedCheckpointer.attach`): the learned and the start weights, what serves,
   * the guard's window and the counters, so a restart resumes learning where the checkpoint's offsets are
   * instead of from the start weights. Not the users' kept lists (up to `maxPendingUsers` × a candidate list):
   * after a restart a user's first list joins nothing, so the outcomes that straddle it are not learned.
   */
  checkpointAttachment(): { capture(): OnlineBlendState; restore(saved: unknown): void } {
    return { capture: () => this.captureState(), restore: (saved) => this.restoreState(saved) };
  }

  private captureState(): OnlineBlendState {
    return {
      version: ONLINE_BLEND_STATE_VERSION,
      start: [...this.w0],
      weights: [...this.w],
      mode: this.mode,
      window: this.rates.capture(),
      cases: this.cases,
      unmatched: this.unmatched,
    };
  }

  /** A saved state of another version or shape (another start, other terms, another window) is refused. */
  private restoreState(saved: unknown): void {
    const s = saved as Partial<OnlineBlendState> | null;
    const fits = (xs: unknown): xs is number[] => Array.isArray(xs) && xs.length === TERM_COUNT && xs.every(Number.isFinite);
    const refuse = (why: string): void => {
      this.hooks.logger?.warn({ code: 'ONLINE_BLEND_STATE_REFUSED', why }, 'online blend: the checkpoint\'s state does not fit this configuration; learning starts again from the start weights');
    };
    if (s?.version !== ONLINE_BLEND_STATE_VERSION || !fits(s.weights) || !fits(s.start) || !s.mode || !s.window) return refuse('unknown version or shape');
    if (s.start.some((x, j) => x !== this.w0[j])) return refuse('other start weights');
    if (s.mode.kind === 'signal' && !(Number.isInteger(s.mode.signal) && s.mode.signal >= 0 && s.mode.signal < ALTERNATIVES.length)) return refuse('unknown serving signal');
    if (!this.rates.restore(s.window)) return refuse('another guard window');
    this.w.set(s.weights);
    this.mode = s.mode.kind === 'blend' ? BLEND : { kind: 'signal', signal: s.mode.signal };
    this.setServing();
    this.past.reset(this.w, this.v);
    this.cases = s.cases ?? 0;
    this.unmatched = s.unmatched ?? 0;
    this.kept.clear();
  }

  private scoreOne(c: ScoringCase): Float32Array {
    this.cases++;
    const n = c.candidates.length;
    const x = new Float32Array(n * TERM_COUNT);
    for (let i = 0; i < n; i++) termsInto(c.candidates[i]!.features, x, i * TERM_COUNT);
    const at = this.past.asOf(c.atMs);
    if (at.beyond) this.beyondHistory++;
    const served = new Float32Array(n);
    const blend = new Float32Array(n);
    for (let i = 0; i < n; i++) {
      served[i] = dot(at.serving, x, i * TERM_COUNT);
      blend[i] = dot(at.blend, x, i * TERM_COUNT);
    }
    this.join(c, x, blend);
    return served;
  }

  private join(c: ScoringCase, x: Float32Array, blend: Float32Array): void {
    const userId = c.user.userId;
    const count = c.user.interactionCount;
    const previous = this.kept.get(userId);
    if (previous) {
      if (count < previous.count) return;
      if (count === previous.count) {
        if (c.candidates.length > previous.ids.length) this.keep(userId, c, x, blend);
        return;
      }
      const taken = Math.min(count - previous.count, c.user.recentItems.length);
      let positive = -1;
      // The earliest item taken since the kept list that was on it.
      for (let r = taken - 1; r >= 0 && positive < 0; r--) positive = previous.ids.indexOf(c.user.recentItems[r]!.itemId);
      if (positive >= 0) this.outcome(previous, positive, c.atMs);
      else this.unmatched++;
    }
    this.keep(userId, c, x, blend);
  }

  private keep(userId: string, c: ScoringCase, x: Float32Array, blend: Float32Array): void {
    this.kept.delete(userId);
    this.kept.set(userId, { count: c.user.interactionCount, ids: c.candidates.map((e) => e.itemId), x, blend });
    if (this.kept.size > this.options.maxPendingUsers) this.kept.delete(this.kept.keys().next().value!);
  }

  private outcome(list: KeptList, positive: number, atMs: number): void {
    const { k } = this.options;
    const n = list.ids.length;
    const hits: boolean[] = new Array<boolean>(TRACKED_RANKERS.length);
    hits[BLEND_RANKER] = rankAt(list.blend, positive) < k;
    const scratch = new Float64Array(n);
    for (let i = 0; i < n; i++) scratch[i] = dot(this.w0, list.x, i * TERM_COUNT);
    hits[START_RANKER] = rankAt(scratch, positive) < k;
    for (let j = 0; j < TERM_COUNT; j++) {
      for (let i = 0; i < n; i++) scratch[i] = signalScore(list.x, i, j);
      hits[FIRST_TERM + j] = rankAt(scratch, positive) < k;
    }
    this.rates.record(hits);
    this.learn(list, positive);
    const g = this.options.guard;
    if (this.rates.total % g.checkEvery === 0 && this.rates.filled >= g.minOutcomes) this.check();
    this.setServing();
    this.past.push(atMs, this.w, this.v);
  }

  /** One step on the joined list: `loss` decides which candidates the positive is compared with. */
  private learn(list: KeptList, positive: number): void {
    const { learningRate, l2, maxStep } = this.options;
    const grad = this.options.loss === 'listwise' ? this.listwiseGradient(list, positive) : this.pairwiseGradient(list, positive);
    if (!grad) return;
    let norm = 0;
    for (let j = 0; j < TERM_COUNT; j++) {
      grad[j] = learningRate * (grad[j]! - l2 * (this.w[j]! - this.w0[j]!));
      norm += grad[j]! * grad[j]!;
    }
    const scale = Math.sqrt(norm) > maxStep ? maxStep / Math.sqrt(norm) : 1;
    for (let j = 0; j < TERM_COUNT; j++) this.w[j]! += scale * grad[j]!;
  }

  /** Pairwise logistic: the positive against the blend's top k (what the list showed), mean over the pairs. */
  private pairwiseGradient(list: KeptList, positive: number): Float64Array | null {
    const { k } = this.options;
    const n = list.ids.length;
    const order = Array.from({ length: n }, (_, i) => i).sort((a, b) => list.blend[b]! - list.blend[a]! || a - b);
    const grad = new Float64Array(TERM_COUNT);
    const p = positive * TERM_COUNT;
    let pairs = 0;
    for (let r = 0; r < order.length && pairs < k; r++) {
      const neg = order[r]!;
      if (neg === positive) continue;
      const q = neg * TERM_COUNT;
      let margin = 0;
      for (let j = 0; j < TERM_COUNT; j++) margin += this.w[j]! * (list.x[p + j]! - list.x[q + j]!);
      // d/dw log σ(margin) = (1 − σ(margin)) (x_p − x_n)
      const weight = 1 / (1 + Math.exp(margin));
      for (let j = 0; j < TERM_COUNT; j++) grad[j]! += weight * (list.x[p + j]! - list.x[q + j]!);
      pairs++;
    }
    if (pairs === 0) return null;
    for (let j = 0; j < TERM_COUNT; j++) grad[j]! /= pairs;
    return grad;
  }

  /** Listwise softmax (the loss the baseline's weights were fitted with): x_p − Σ softmax(w·x)_i x_i. */
  private listwiseGradient(list: KeptList, positive: number): Float64Array {
    const n = list.ids.length;
    const s = new Float64Array(n);
    let top = -Infinity;
    for (let i = 0; i < n; i++) top = Math.max(top, (s[i] = dot(this.w, list.x, i * TERM_COUNT)));
    let z = 0;
    for (let i = 0; i < n; i++) z += s[i] = Math.exp(s[i]! - top);
    const grad = new Float64Array(TERM_COUNT);
    for (let j = 0; j < TERM_COUNT; j++) grad[j] = list.x[positive * TERM_COUNT + j]!;
    for (let i = 0; i < n; i++) {
      const pi = s[i]! / z;
      for (let j = 0; j < TERM_COUNT; j++) grad[j]! -= pi * list.x[i * TERM_COUNT + j]!;
    }
    return grad;
  }

  private windowRates(): Record<string, number> {
    return Object.fromEntries(TRACKED_RANKERS.map((name, r) => [name, this.rates.rate(r)]));
  }

  private check(): void {
    const blendRate = this.rates.rate(BLEND_RANKER);
    const signalRates = ALTERNATIVES.map((_, a) => this.rates.rate(FIRST_ALTERNATIVE + a));
    const next = decide(this.mode, blendRate, signalRates, this.options.guard.margin);
    const from = this.serving;
    const changed = next.kind !== this.mode.kind || (next.kind === 'signal' && this.mode.kind === 'signal' && next.signal !== this.mode.signal);
    this.mode = next;
    const check: WindowCheck = { outcomes: this.rates.total, serving: this.serving, hitRates: this.windowRates() };
    if (this.checkLog.length < MAX_CHECKS_KEPT) this.checkLog.push(check);
    this.hooks.onCheck?.(check);
    if (!changed) return;
    const change: GuardChange = {
      from,
      to: this.serving,
      outcomes: this.rates.total,
      blendHitRate: blendRate,
      servingHitRate: next.kind === 'signal' ? signalRates[next.signal]! : blendRate,
    };
    if (this.changes.length < MAX_CHANGES_KEPT) this.changes.push(change);
    this.hooks.onGuardChange?.(change);
    const fields = { code: next.kind === 'signal' ? 'ONLINE_BLEND_FALLBACK' : 'ONLINE_BLEND_RESTORED', ...change, window: this.rates.filled };
    if (next.kind === 'signal') this.hooks.logger?.warn(fields, 'online blend trails a single signal over the window: that signal serves');
    else this.hooks.logger?.info(fields, 'online blend is back within the margin of the best single signal: the blend serves');
  }

  private setServing(): void {
    if (this.mode.kind === 'blend') {
      this.v.set(this.w);
      return;
    }
    if (this.mode.signal === 0) {
      this.v.set(this.w0);
      return;
    }
    const term = this.mode.signal - 1;
    this.v.fill(0);
    this.v[term] = 1;
    if (term !== POPULARITY_TERM) this.v[POPULARITY_TERM] = TIE_BREAK;
  }
}

export function createOnlineScorer(options: Partial<OnlineBlendOptions> = {}, hooks: OnlineBlendHooks = {}): OnlineBlendScorer {
  return new OnlineBlendScorer(options, hooks);
}

function dot(w: Float64Array, x: Float32Array, at: number): number {
  let s = 0;
  for (let j = 0; j < TERM_COUNT; j++) s += w[j]! * x[at + j]!;
  return s;
}

/** One term alone, with the popularity tie-break (`src/eval/systems.ts` ranks single signals the same way). */
function signalScore(x: Float32Array, i: number, term: number): number {
  const at = i * TERM_COUNT;
  return x[at + term]! + (term === POPULARITY_TERM ? 0 : TIE_BREAK * x[at + POPULARITY_TERM]!);
}

/** 0-based rank of `i` by score, equal scores in list order (as `topByScore` orders them). */
function rankAt(scores: ArrayLike<number>, i: number): number {
  const s = scores[i]!;
  let rank = 0;
  for (let j = 0; j < scores.length; j++) if (scores[j]! > s || (scores[j] === s && j < i)) rank++;
  return rank;
}

/**
 * The last `capacity` weight vectors (learned and serving) with the time of the update that made each; what
 * a list scored at time t reads is the newest made before t.
 */
class WeightHistory {
  private readonly at: Float64Array;
  private readonly blend: Float64Array;
  private readonly serving: Float64Array;
  private newest = -1;
  private size = 0;
  private evicted = false;

  constructor(
    private readonly capacity: number,
    private readonly initial: Float64Array,
  ) {
    this.at = new Float64Array(capacity);
    this.blend = new Float64Array(capacity * TERM_COUNT);
    this.serving = new Float64Array(capacity * TERM_COUNT);
  }

  push(atMs: number, blend: Float64Array, serving: Float64Array): void {
    this.newest = (this.newest + 1) % this.capacity;
    this.at[this.newest] = atMs;
    this.blend.set(blend, this.newest * TERM_COUNT);
    this.serving.set(serving, this.newest * TERM_COUNT);
    if (this.size === this.capacity) this.evicted = true;
    else this.size++;
  }

  /** Forgets every vector but these, which lists of any time then read (a restored checkpoint). */
  reset(blend: Float64Array, serving: Float64Array): void {
    this.newest = -1;
    this.size = 0;
    this.evicted = false;
    this.push(Number.NEGATIVE_INFINITY, blend, serving);
  }

  asOf(atMs: number): { blend: Float64Array; serving: Float64Array; beyond: boolean } {
    for (let back = 0; back < this.size; back++) {
      const s = (this.newest - back + this.capacity) % this.capacity;
      if (this.at[s]! < atMs) return { ...this.slot(s), beyond: false };
    }
    if (this.evicted) return { ...this.slot((this.newest + 1) % this.capacity), beyond: true };
    return { blend: this.initial, serving: this.initial, beyond: false };
  }

  private slot(s: number): { blend: Float64Array; serving: Float64Array } {
    const from = s * TERM_COUNT;
    return { blend: this.blend.subarray(from, from + TERM_COUNT), serving: this.serving.subarray(from, from + TERM_COUNT) };
  }
}

/** `ranking.online` as the scorer's options; the guard's hit is "in the published top K" (`ranking.topK`). */
export function onlineBlendOptions(ranking: Pick<Config['ranking'], 'online' | 'topK'>): Partial<OnlineBlendOptions> {
  const o = ranking.online;
  return {
    k: ranking.topK,
    loss: o.loss,
    learningRate: o.learningRate,
    l2: o.l2,
    maxPendingUsers: o.maxPendingUsers,
    guard: { ...DEFAULT_GUARD_OPTIONS, window: o.guardWindow, minOutcomes: o.guardMinOutcomes, margin: o.guardMargin },
  };
}
