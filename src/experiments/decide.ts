import type { ExperimentAccounting } from './accounting.ts';
import { HOLDOUT, type Experiment, type ScorerRef } from './definition.ts';
import { msprt, proportionSequence, type SequentialResult } from './sequential.ts';

/**
 * Decisions on evidence. At every look (as often as the caller likes: the test stays valid), each challenger
 * gets a verdict against the champion, in this order:
 *
 * | verdict | code | when |
 * |---|---|---|
 * | `rollback` | `GUARDRAIL_LATENCY` | it has served `guardrails.minRequests` and its p99 latency exceeds the bound, whatever its hit rate |
 * | `rollback` | `GUARDRAIL_ERRORS` | same, for its error rate |
 * | `continue` | `MIN_SAMPLE` | it or the champion has fewer than `test.minOutcomesPerArm` joined outcomes |
 * | `promote` | `HIT_RATE_BETTER` | the always-valid confidence sequence on challenger − champion hit@K lies above 0 |
 * | `rollback` | `HIT_RATE_WORSE` | it lies below 0 |
 * | `inconclusive` | `MAX_DURATION` | `test.maxOutcomes` outcomes in all arms and neither of the above |
 * | `continue` | `NOT_YET` | otherwise |
 *
 * Each challenger is tested at α / (number of challengers) (Bonferroni), so the chance that any truly
 * no-better challenger is ever promoted stays ≤ α. The experiment's decision: `promote` if a challenger is
 * promoted (the one with the highest lower bound), else `continue` while one continues, else `rollback` if
 * every challenger was rolled back, else `inconclusive`. A rolled-back challenger should be retired at once
 * even while others continue: its verdict is in `challengers`.
 */

export const EXPERIMENT_REPORT_VERSION = 'experiment-report-1';
export const VERDICTS = ['promote', 'rollback', 'inconclusive', 'continue'] as const;
export type Verdict = (typeof VERDICTS)[number];
export const VERDICT_CODES = ['GUARDRAIL_LATENCY', 'GUARDRAIL_ERRORS', 'MIN_SAMPLE', 'HIT_RATE_BETTER', 'HIT_RATE_WORSE', 'MAX_DURATION', 'NOT_YET'] as const;
export type VerdictCode = (typeof VERDICT_CODES)[number];

/** The verdict on one challenger at one look, without the report's summaries (cheap: simulations call it per event). */
export interface ChallengerVerdict {
  readonly arm: string;
  readonly verdict: Verdict;
  readonly code: VerdictCode;
  readonly test: SequentialResult;
  /** Challenger p99 latency, ms (bucket upper bound); null before any request. */
  readonly p99LatencyMs: number | null;
  /** Challenger errors / requests; null before any request. */
  readonly errorRate: number | null;
}

export function judge(experiment: Experiment, accounting: ExperimentAccounting): readonly ChallengerVerdict[] {
  const champion = accounting.counts(experiment.champion);
  let outcomes = 0;
  for (const arm of experiment.arms) outcomes += accounting.counts(arm.name).trials;
  const out: ChallengerVerdict[] = [];
  // A plain loop and no closures: simulations call this after every event.
  for (const arm of experiment.challengers) out.push(judgeOne(experiment, champion, accounting.counts(arm), arm, outcomes));
  return out;
}

function judgeOne(experiment: Experiment, champion: ArmTotals, c: ArmTotals, arm: string, outcomes: number): ChallengerVerdict {
  const { test, guardrails } = experiment;
  const result = msprt(champion, c, test.alpha / experiment.challengers.length, test.mixtureSd);
  const p99LatencyMs = c.latency.count > 0 ? c.latency.quantile(0.99) : null;
  const errorRate = c.requests > 0 ? c.errors / c.requests : null;
  const overMax = outcomes >= test.maxOutcomes;
  let verdict: Verdict;
  let code: VerdictCode;
  if (c.requests >= guardrails.minRequests && p99LatencyMs !== null && p99LatencyMs > guardrails.maxP99LatencyMs) {
    [verdict, code] = ['rollback', 'GUARDRAIL_LATENCY'];
  } else if (c.requests >= guardrails.minRequests && errorRate !== null && errorRate > guardrails.maxErrorRate) {
    [verdict, code] = ['rollback', 'GUARDRAIL_ERRORS'];
  } else if (champion.trials < test.minOutcomesPerArm || c.trials < test.minOutcomesPerArm) {
    [verdict, code] = overMax ? ['inconclusive', 'MAX_DURATION'] : ['continue', 'MIN_SAMPLE'];
  } else if (result.lower > 0) {
    [verdict, code] = ['promote', 'HIT_RATE_BETTER'];
  } else if (result.upper < 0) {
    [verdict, code] = ['rollback', 'HIT_RATE_WORSE'];
  } else {
    [verdict, code] = overMax ? ['inconclusive', 'MAX_DURATION'] : ['continue', 'NOT_YET'];
  }
  return { arm, verdict, code, test: result, p99LatencyMs, errorRate };
}

type ArmTotals = ReturnType<ExperimentAccounting['counts']>;

/** The experiment's decision from its challengers' verdicts (see the module comment). */
export function overall(verdicts: readonly ChallengerVerdict[]): { readonly decision: Verdict; readonly about: ChallengerVerdict | null } {
  const promoted = verdicts.filter((v) => v.verdict === 'promote').sort((a, b) => b.test.lower - a.test.lower);
  if (promoted[0]) return { decision: 'promote', about: promoted[0] };
  if (verdicts.some((v) => v.verdict === 'continue')) return { decision: 'continue', about: null };
  if (verdicts.every((v) => v.verdict === 'rollback')) return { decision: 'rollback', about: verdicts.length === 1 ? verdicts[0]! : null };
  return { decision: 'inconclusive', about: verdicts.length === 1 ? verdicts[0]! : null };
}

export interface ArmSummary {
  readonly arm: string;
  readonly scorer: ScorerRef | null;
  readonly outcomes: number;
  readonly hits: number;
  /** hit@K; null without outcomes. */
  readonly hitRate: number | null;
  /** Always-valid (1 − α) confidence sequence on this arm's hit@K alone (for status tables). */
  readonly hitRateInterval: readonly [number, number];
  /** Mean NDCG@K; null without outcomes. */
  readonly ndcg: number | null;
  readonly requests: number;
  readonly errors: number;
  readonly errorRate: number | null;
  readonly p50LatencyMs: number | null;
  readonly p99LatencyMs: number | null;
}

export interface ChallengerReport extends ArmSummary {
  readonly verdict: Verdict;
  readonly code: VerdictCode;
  readonly reason: string;
  /** The mSPRT against the champion, at α / challengers; null where a number is not finite (no outcomes yet). */
  readonly test: { readonly [K in keyof SequentialResult]: number | null } & { readonly alpha: number };
}

/** What one look decided, with its numbers; JSON-able (non-finite numbers are null). */
export interface ExperimentReport {
  readonly reportVersion: string;
  readonly experiment: string;
  /** Joined outcomes over all arms, holdout excluded: the test's clock. */
  readonly outcomes: number;
  readonly decision: Verdict;
  /** The challenger the decision is about (`promote`: the one to publish), or null. */
  readonly arm: string | null;
  readonly code: VerdictCode | null;
  readonly reason: string;
  readonly settings: {
    readonly k: number;
    readonly alpha: number;
    readonly mixtureSd: number;
    readonly minOutcomesPerArm: number;
    readonly maxOutcomes: number;
    readonly maxP99LatencyMs: number;
    readonly maxErrorRate: number;
    readonly guardrailMinRequests: number;
  };
  readonly champion: ArmSummary;
  readonly challengers: readonly ChallengerReport[];
  readonly holdout: ArmSummary | null;
  readonly summary: string;
}

export function decide(experiment: Experiment, accounting: ExperimentAccounting): ExperimentReport {
  const verdicts = judge(experiment, accounting);
  const { decision, about } = overall(verdicts);
  const alpha = experiment.test.alpha / experiment.challengers.length;
  const summarise = (cell: string): ArmSummary => summarize(experiment, accounting, cell, alpha);
  const challengers = verdicts.map((v): ChallengerReport => ({
    ...summarise(v.arm),
    verdict: v.verdict,
    code: v.code,
    reason: reasonOf(experiment, v),
    test: { ...finite(v.test), alpha },
  }));
  let outcomes = 0;
  for (const arm of experiment.arms) outcomes += accounting.counts(arm.name).trials;
  const report: Omit<ExperimentReport, 'summary'> = {
    reportVersion: EXPERIMENT_REPORT_VERSION,
    experiment: experiment.name,
    outcomes,
    decision,
    arm: about?.arm ?? null,
    code: about?.code ?? null,
    reason: about ? reasonOf(experiment, about) : decision === 'continue' ? 'collecting evidence' : 'no challenger left running',
    settings: {
      k: experiment.k,
      alpha: experiment.test.alpha,
      mixtureSd: experiment.test.mixtureSd,
      minOutcomesPerArm: experiment.test.minOutcomesPerArm,
      maxOutcomes: experiment.test.maxOutcomes,
      maxP99LatencyMs: experiment.guardrails.maxP99LatencyMs,
      maxErrorRate: experiment.guardrails.maxErrorRate,
      guardrailMinRequests: experiment.guardrails.minRequests,
    },
    champion: summarise(experiment.champion),
    challengers,
    holdout: experiment.holdoutShare > 0 ? summarise(HOLDOUT) : null,
  };
  return { ...report, summary: summaryLine(report) };
}

export function summaryLine(r: Omit<ExperimentReport, 'summary'>): string {
  const arms = r.challengers
    .map((c) => `${c.arm} ${pct(c.hitRate)} vs ${pct(r.champion.hitRate)} (Δ ${signed(c.test.difference)} [${signed(c.test.lower)}, ${signed(c.test.upper)}]) ${c.verdict} ${c.code}`)
    .join('; ');
  return `experiment ${r.experiment}: ${r.decision}${r.arm ? ` ${r.arm}` : ''} after ${r.outcomes} outcomes; champion ${r.champion.arm}; ${arms}`;
}

function reasonOf(experiment: Experiment, v: ChallengerVerdict): string {
  const { test, guardrails } = experiment;
  const ci = `hit@${experiment.k} difference ${signed(v.test.difference)}, always-valid interval [${signed(v.test.lower)}, ${signed(v.test.upper)}]`;
  switch (v.code) {
    case 'GUARDRAIL_LATENCY':
      return `${v.arm}: p99 latency ${v.p99LatencyMs?.toFixed(1)} ms > bound ${guardrails.maxP99LatencyMs} ms`;
    case 'GUARDRAIL_ERRORS':
      return `${v.arm}: error rate ${pct(v.errorRate)} > bound ${pct(guardrails.maxErrorRate)}`;
    case 'MIN_SAMPLE':
      return `${v.arm}: fewer than ${test.minOutcomesPerArm} outcomes in it or the champion`;
    case 'HIT_RATE_BETTER':
      return `${v.arm} beats the champion: ${ci} above 0`;
    case 'HIT_RATE_WORSE':
      return `${v.arm} is worse than the champion: ${ci} below 0`;
    case 'MAX_DURATION':
      return `${v.arm}: no decision within ${test.maxOutcomes} outcomes (${ci})`;
    case 'NOT_YET':
      return `${v.arm}: ${ci} contains 0`;
  }
}

function summarize(experiment: Experiment, accounting: ExperimentAccounting, cell: string, alpha: number): ArmSummary {
  const c = accounting.counts(cell);
  const interval = proportionSequence(c, alpha, experiment.test.mixtureSd);
  return {
    arm: cell,
    scorer: experiment.arms.find((a) => a.name === (cell === HOLDOUT ? experiment.champion : cell))?.scorer ?? null,
    outcomes: c.trials,
    hits: c.hits,
    hitRate: c.trials > 0 ? c.hits / c.trials : null,
    hitRateInterval: [interval.lower, interval.upper],
    ndcg: c.trials > 0 ? c.ndcgSum / c.trials : null,
    requests: c.requests,
    errors: c.errors,
    errorRate: c.requests > 0 ? c.errors / c.requests : null,
    p50LatencyMs: orNull(c.latency.quantile(0.5)),
    p99LatencyMs: orNull(c.latency.quantile(0.99)),
  };
}

/** NaN and ±Infinity would not survive JSON: the report says null. */
function finite(r: SequentialResult): { readonly [K in keyof SequentialResult]: number | null } {
  return {
    difference: orNull(r.difference),
    lower: orNull(r.lower),
    upper: orNull(r.upper),
    likelihoodRatio: orNull(r.likelihoodRatio),
    pValue: orNull(r.pValue),
    variance: orNull(r.variance),
  };
}

function orNull(v: number): number | null {
  return Number.isFinite(v) ? v : null;
}

function pct(v: number | null): string {
  return v === null || !Number.isFinite(v) ? '–' : `${(v * 100).toFixed(2)}%`;
}

function signed(v: number | null): string {
  if (v === null || !Number.isFinite(v)) return '–';
  return `${v >= 0 ? '+' : ''}${v.toFixed(4)}`;
}
