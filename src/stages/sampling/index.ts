import type { CollaborativeEvidence, UserContext } from '../../domain/evidence.ts';
import { SAMPLING_REASONS, type SamplingReason, type TeacherCase } from '../../domain/teacher.ts';
import { createRng, type Rng } from '../../data/random.ts';
import { RateEstimator, TokenBucket } from './budget.ts';

/**
 * The case sampler: picks ranked events for the MARS teacher under a budget, by strategy, and freezes each
 * pick as a `TeacherCase` built only from what the pipeline knew at the event.
 *
 * Strategies (the reason a case records):
 * - `uncertain`: the serving scorer's two top scores are within `uncertainMaxMargin` (in the scorer's own
 *   units: the baseline's blend and STAR's logits are both log-scale, so one default suits both). The case
 *   records the margin.
 * - `cold-user`: the user has at most `coldUserMaxInteractions` interactions, the triggering one included.
 * - `long-tail`: the list the teacher would rank is mostly tail items: at least `longTailMinShare` of the
 *   case's candidates have a long-window popularity of at most `longTailMaxPopularityShare` × the most popular
 *   candidate's (the popular source puts the stream's head in every candidate list, so that maximum is the
 *   head at that moment). The user's *next* item would be the natural test, but it is the future: the
 *   candidate list is what is knowable when the case is sampled.
 * - `uniform`: any event.
 * An event that meets several conditions is offered to the specific strategies first (in the order above),
 * then to `uniform`; it becomes at most one case.
 *
 * Budget: `casesPerMinute` per minute of **event time**, split over the strategies by their weights. Each
 * strategy has a token bucket (capacity `burstCases` × its share, at least 1) and accepts an eligible event
 * with probability min(1, 1.5 × its rate / the estimated rate of its eligible events), so picks spread over the
 * stream instead of taking the first events of each minute; the bucket is the hard cap. Event time rather
 * than wall time because then a replay, a re-run after a crash and a live run pick the same cases from the
 * same events (at-least-once re-processing produces the same case again, de-duplicated by `caseId`), and the
 * budget follows the stream's volume whatever the replay speed. The teacher's wall-time capacity is
 * protected downstream: the teacher-cases topic is its backlog. The budget is per pipeline instance (each
 * owns a share of the partitions).
 *
 * Determinism: every random draw is `rng.fork(reason + eventId)`, a function of the seed and the event only,
 * so the same stream gives the same cases whatever the batch boundaries or restarts (the buckets and rate
 * estimates restart full and empty, which can change which events win right after a restart).
 */

export interface SamplingOptions {
  readonly enabled: boolean;
  /** Cases per minute of event time, all strategies together. */
  readonly casesPerMinute: number;
  /** Largest burst of cases, all strategies together. */
  readonly burstCases: number;
  /** Candidates in a case, the serving scorer's best first. */
  readonly candidatesPerCase: number;
  readonly seed: number;
  /** Relative share of the budget per strategy; 0 turns a strategy off. */
  readonly weights: Readonly<Record<SamplingReason, number>>;
  readonly uncertainMaxMargin: number;
  readonly coldUserMaxInteractions: number;
  readonly longTailMaxPopularityShare: number;
  readonly longTailMinShare: number;
  /** Time constant of the eligible-event rate estimate, ms of event time. */
  readonly rateWindowMs: number;
}

/** One scored candidate, as the ranking stage returns it. */
export interface ScoredCandidate {
  readonly evidence: CollaborativeEvidence;
  readonly score: number;
}

/** What the sampler looks at for one ranked event. */
export interface SamplingInput {
  readonly eventId: string;
  readonly atMs: number;
  readonly user: UserContext;
  /** The serving scorer's best candidates, best first: at least `candidatesPerCase` where there are that many. */
  readonly ranked: readonly ScoredCandidate[];
  /** Long-window popularity of the most popular candidate of the whole list (see `headPopularity`). */
  readonly headPopularity: number;
}

export interface SamplingDecision {
  readonly reason: SamplingReason;
  /** Top-1 minus top-2 score; null with fewer than two candidates. */
  readonly margin: number | null;
}

/**
 * Offers go out at this multiple of a strategy's rate: at exactly its rate, random gaps and bursts would leave
 * the bucket full at times and empty at others, and the strategy would take well under its budget. The bucket
 * trims the excess.
 */
const OVERSAMPLE = 1.5;

/** Specific strategies first; `uniform` takes what they leave. */
const OFFER_ORDER: readonly SamplingReason[] = ['uncertain', 'cold-user', 'long-tail', 'uniform'];

export class CaseSampler {
  private readonly rng: Rng;
  private readonly buckets = new Map<SamplingReason, TokenBucket>();
  private readonly rates = new Map<SamplingReason, RateEstimator>();
  private readonly targetPerMinute = new Map<SamplingReason, number>();

  constructor(private readonly options: SamplingOptions) {
    this.rng = createRng(options.seed);
    const total = SAMPLING_REASONS.reduce((sum, r) => sum + Math.max(0, options.weights[r]), 0);
    for (const reason of SAMPLING_REASONS) {
      const share = total > 0 ? Math.max(0, options.weights[reason]) / total : 0;
      if (share === 0) continue;
      const rate = options.casesPerMinute * share;
      this.targetPerMinute.set(reason, rate);
      this.buckets.set(reason, new TokenBucket(rate, Math.max(1, options.burstCases * share)));
      this.rates.set(reason, new RateEstimator(options.rateWindowMs));
    }
  }

  /** How many candidates a case holds: the processor ranks at least this deep while sampling. */
  get candidatesPerCase(): number {
    return this.options.candidatesPerCase;
  }

  /** The strategies whose condition the event meets (before budget), in offer order. */
  eligible(input: SamplingInput): SamplingReason[] {
    const o = this.options;
    const out: SamplingReason[] = [];
    const margin = marginOf(input.ranked);
    for (const reason of OFFER_ORDER) {
      const ok =
        reason === 'uniform' ||
        (reason === 'uncertain' && margin !== null && margin <= o.uncertainMaxMargin) ||
        (reason === 'cold-user' && input.user.interactionCount <= o.coldUserMaxInteractions) ||
        (reason === 'long-tail' && isLongTail(input.ranked.slice(0, o.candidatesPerCase), input.headPopularity, o));
      if (ok) out.push(reason);
    }
    return out;
  }

  /**
   * Whether to make a case of this event, and why. Call once per ranked event in log order; events without
   * candidates are never picked (there is nothing to rank).
   */
  decide(input: SamplingInput): SamplingDecision | null {
    if (!this.options.enabled || input.ranked.length === 0) return null;
    const reasons = this.eligible(input).filter((r) => this.buckets.has(r));
    for (const reason of reasons) this.rates.get(reason)!.observe(input.atMs);
    for (const reason of reasons) {
      const rate = this.rates.get(reason)!.perMinute();
      const p = Math.min(1, (OVERSAMPLE * this.targetPerMinute.get(reason)!) / Math.max(rate, Number.MIN_VALUE));
      const draw = this.rng.fork(`${reason}:${input.eventId}`).next();
      if (draw < p && this.buckets.get(reason)!.take(input.atMs)) {
        return { reason, margin: reason === 'uncertain' ? marginOf(input.ranked) : null };
      }
    }
    return null;
  }
}

/** Top-1 minus top-2 score of a best-first list; null with fewer than two. */
export function marginOf(ranked: readonly ScoredCandidate[]): number | null {
  if (ranked.length < 2) return null;
  return ranked[0]!.score - ranked[1]!.score;
}

/** The largest long-window popularity among `candidates` (0 for none). */
export function headPopularity(candidates: readonly CollaborativeEvidence[]): number {
  let max = 0;
  for (const c of candidates) max = Math.max(max, c.features.popularity);
  return max;
}

function isLongTail(caseCandidates: readonly ScoredCandidate[], head: number, o: SamplingOptions): boolean {
  if (head <= 0 || caseCandidates.length === 0) return false;
  const limit = o.longTailMaxPopularityShare * head;
  const tail = caseCandidates.filter((c) => c.evidence.features.popularity <= limit).length;
  return tail / caseCandidates.length >= o.longTailMinShare;
}

export interface CaseSource {
  readonly studentModel: string;
  readonly templateVersion: string;
}

/**
 * Freezes a decision as a case. `candidates` are the case's candidates (the best `candidatesPerCase` of
 * `input.ranked`, in that order) with their CST sentences rendered; their scores come from `input.ranked`.
 * Everything in it was computed from the state as of the event: nothing later can reach it.
 */
export function toTeacherCase(
  input: SamplingInput,
  decision: SamplingDecision,
  candidates: readonly CollaborativeEvidence[],
  source: CaseSource,
): TeacherCase {
  const scores = input.ranked.slice(0, candidates.length).map((r) => r.score);
  for (let i = 0; i < candidates.length; i++) {
    if (candidates[i]!.itemId !== input.ranked[i]!.evidence.itemId) {
      throw new Error(`case candidate ${i} is ${candidates[i]!.itemId}, ranked ${input.ranked[i]!.evidence.itemId}`);
    }
  }
  return {
    caseId: caseIdOf(input.eventId),
    eventId: input.eventId,
    atMs: input.atMs,
    reason: decision.reason,
    margin: decision.margin,
    user: input.user,
    candidates,
    studentScores: scores,
    studentModel: source.studentModel,
    templateVersion: source.templateVersion,
  };
}

/** One case per triggering event. */
export function caseIdOf(eventId: string): string {
  return `case-${eventId}`;
}
