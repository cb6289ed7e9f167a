import { createRng, type Seed } from '../data/random.ts';
import { ExperimentAccounting } from './accounting.ts';
import { assignArm, cellOf } from './assign.ts';
import type { Experiment } from './definition.ts';
import { decide, judge, overall, type ExperimentReport, type Verdict } from './decide.ts';

/**
 * A seeded world where each arm's true hit probability is known: a population of users assigned by
 * {@link assignArm}, a stream of events (a random user, one scoring request, one joined outcome that is a
 * hit@K with the arm's probability), and the decision looked at after every `lookEvery` events. Used by the
 * tests (power, rollback, A/A false promotions, guardrails) and by `bench/experiment-sim.ts` for the picture.
 */

export interface SimulationOptions {
  readonly experiment: Experiment;
  /** True hit@K probability of each arm; the holdout has the champion's. */
  readonly hitRates: Readonly<Record<string, number>>;
  /** Mean of each arm's exponential scoring latency, ms; unset arms 5 ms. */
  readonly latencyMs?: Readonly<Record<string, number>>;
  /** Probability that a request of the arm fails; unset arms 0. */
  readonly errorRates?: Readonly<Record<string, number>>;
  readonly seed: Seed;
  /** Size of the user population. @default 5000 */
  readonly users?: number;
  /** Events between looks; 1 = after every event (continuous monitoring). @default 1 */
  readonly lookEvery?: number;
  /** Events between trace points of the first challenger's estimate; 0 = no trace. @default 0 */
  readonly traceEvery?: number;
}

export interface TracePoint {
  readonly events: number;
  /** Observed hit@K of the champion and of the first challenger. */
  readonly championRate: number;
  readonly challengerRate: number;
  /** Challenger − champion, with its always-valid confidence sequence. */
  readonly difference: number;
  readonly lower: number;
  readonly upper: number;
}

export interface SimulationResult {
  readonly decision: Verdict;
  /** Events (holdout included) until the decision. */
  readonly events: number;
  readonly report: ExperimentReport;
  readonly trace: readonly TracePoint[];
}

export function simulateExperiment(options: SimulationOptions): SimulationResult {
  const { experiment } = options;
  const rng = createRng(options.seed);
  const users = options.users ?? 5_000;
  const lookEvery = options.lookEvery ?? 1;
  const traceEvery = options.traceEvery ?? 0;
  const accounting = new ExperimentAccounting(experiment);
  // Assignment is a pure function of the id, so computing it once per user is the same as per event.
  const cells: string[] = [];
  const hitRates: number[] = [];
  const latencies: number[] = [];
  const errorRates: number[] = [];
  for (let u = 0; u < users; u++) {
    const assignment = assignArm(`user-${options.seed}-${u}`, experiment);
    cells.push(cellOf(assignment));
    hitRates.push(options.hitRates[assignment.arm] ?? Number.NaN);
    latencies.push(options.latencyMs?.[assignment.arm] ?? 5);
    errorRates.push(options.errorRates?.[assignment.arm] ?? 0);
    if (Number.isNaN(hitRates[u])) throw new RangeError(`no hit rate for arm ${assignment.arm}`);
  }
  const trace: TracePoint[] = [];
  const first = experiment.challengers[0];
  // Holdout events do not advance the test's clock, so the cap leaves room for them.
  const cap = Math.ceil(experiment.test.maxOutcomes / (1 - experiment.holdoutShare)) * 2 + 1_000;
  for (let events = 1; events <= cap; events++) {
    const u = rng.int(users);
    const cell = cells[u]!;
    const failed = rng.bool(errorRates[u]!);
    accounting.recordRequest(cell, rng.exponential(latencies[u]!), !failed);
    accounting.recordOutcome(cell, rng.bool(hitRates[u]!) ? rng.int(experiment.k) : -1);
    if (traceEvery > 0 && events % traceEvery === 0 && first !== undefined) {
      const v = judge(experiment, accounting)[0]!;
      const champion = accounting.counts(experiment.champion);
      const challenger = accounting.counts(first);
      trace.push({
        events,
        championRate: champion.hits / champion.trials,
        challengerRate: challenger.hits / challenger.trials,
        difference: v.test.difference,
        lower: v.test.lower,
        upper: v.test.upper,
      });
    }
    if (events % lookEvery !== 0) continue;
    const { decision } = overall(judge(experiment, accounting));
    if (decision !== 'continue') return { decision, events, report: decide(experiment, accounting), trace };
  }
  throw new Error(`simulation of ${experiment.name} reached ${cap} events without a decision`);
}
