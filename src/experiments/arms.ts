import type { ScoringCase } from '../domain/evidence.ts';
import { errorCode } from '../errors/index.ts';
import type { Scorer } from '../star/port.ts';
import { assignArm, cellOf } from './assign.ts';
import type { Experiment } from './definition.ts';

/**
 * Arms in serving: which scorer ranks for a user, by the experiment's stable assignment (`assign.ts`), and
 * the scoring requests of each arm measured for the accounting and the metrics.
 *
 * The router holds one scorer source per arm (the composition root opens them: the baseline, an online blend,
 * a STAR version from the registry). {@link ArmRouter.scorerFor} takes the user's arm's scorer once per case
 * (so a registry swap never splits a case) and wraps it in an {@link ArmScorer}: the same `Scorer`, with its
 * `arm` (published with the recommendation) and a timer around `score()`.
 *
 * Routing changes only through decisions (`runtime.ts`):
 * - a retired arm (rolled back) serves nothing: its users go to the champion, and they count in no cell from
 *   then on (the champion's cell keeps the users the hash gave it, so its estimate is not mixed);
 * - a concluded experiment (promoted, inconclusive, or every challenger rolled back) serves every user from
 *   its winner (the promoted arm, else the champion) and counts nothing more.
 */

/** Told every scoring request: the cell it counts in (null: none), the arm that served, its latency and outcome. */
export type RequestObserver = (cell: string | null, arm: string, latencyMs: number, ok: boolean, code: string | null) => void;

/** Where a user is served now. */
export interface Route {
  readonly arm: string;
  /** Accounting cell (`arm`, or `holdout`); null when the user counts in no cell (retired arm, concluded, override). */
  readonly cell: string | null;
}

/** An arm's scorer for one case: the same scores, with the arm published and each request measured. */
export class ArmScorer implements Scorer {
  constructor(
    private readonly inner: Scorer,
    readonly arm: string,
    readonly cell: string | null,
    private readonly observe: RequestObserver,
  ) {}

  get modelVersion(): string {
    return this.inner.modelVersion;
  }

  get readsSentences(): boolean {
    return this.inner.readsSentences;
  }

  async score(cases: readonly ScoringCase[]): Promise<Float32Array[]> {
    const start = performance.now();
    try {
      const scores = await this.inner.score(cases);
      this.observe(this.cell, this.arm, performance.now() - start, true, null);
      return scores;
    } catch (err) {
      this.observe(this.cell, this.arm, performance.now() - start, false, errorCode(err));
      throw err;
    }
  }

  /** The router owns the arm scorers: closing one case's wrapper closes nothing. */
  async close(): Promise<void> {}
}

export interface ArmRouterState {
  /** Retired arms (rolled back), with the verdict code that retired them. */
  readonly retired: Readonly<Record<string, string>>;
  /** Set once the experiment is concluded: the arm that serves everyone from then on. */
  readonly winner: string | null;
}

export class ArmRouter {
  private readonly retired = new Map<string, string>();
  private winner: string | null = null;

  /**
   * @param sources one per arm name: the arm's serving scorer now (a registry's `current()`, or a fixed one)
   * @param observe told every scoring request (accounting and metrics)
   */
  constructor(
    readonly experiment: Experiment,
    private readonly sources: ReadonlyMap<string, () => Scorer>,
    private readonly observe: RequestObserver,
  ) {
    for (const arm of experiment.arms) {
      if (!sources.has(arm.name)) throw new RangeError(`no scorer for arm ${arm.name}`);
    }
  }

  route(userId: string): Route {
    if (this.winner !== null) return { arm: this.winner, cell: null };
    const assignment = assignArm(userId, this.experiment);
    if (this.retired.has(assignment.arm)) return { arm: this.experiment.champion, cell: null };
    return { arm: assignment.arm, cell: cellOf(assignment) };
  }

  /** The user's arm's scorer, taken now, for one case. */
  scorerFor(userId: string): ArmScorer {
    const { arm, cell } = this.route(userId);
    return new ArmScorer(this.sources.get(arm)!(), arm, cell, this.observe);
  }

  /** An explicit arm (the API's admin override, for QA): served as asked, counted in no cell. */
  scorerForArm(arm: string): ArmScorer {
    const source = this.sources.get(arm);
    if (!source) throw new RangeError(`experiment ${this.experiment.name} has no arm ${arm}`);
    return new ArmScorer(source(), arm, null, this.observe);
  }

  hasArm(arm: string): boolean {
    return this.sources.has(arm);
  }

  /** Stops serving a challenger: its users go to the champion. The champion is never retired. */
  retire(arm: string, code: string): void {
    if (arm === this.experiment.champion || !this.sources.has(arm)) throw new RangeError(`cannot retire arm ${arm}`);
    this.retired.set(arm, code);
  }

  isRetired(arm: string): boolean {
    return this.retired.has(arm);
  }

  /** Ends the experiment: `winner` (an arm) serves every user from now on. */
  conclude(winner: string): void {
    if (!this.sources.has(winner)) throw new RangeError(`no arm ${winner}`);
    this.winner = winner;
  }

  get concludedWith(): string | null {
    return this.winner;
  }

  state(): ArmRouterState {
    return { retired: Object.fromEntries(this.retired), winner: this.winner };
  }

  /** Restores decisions taken before a restart (arms unknown to this experiment are ignored). */
  restore(state: ArmRouterState): void {
    for (const [arm, code] of Object.entries(state.retired)) {
      if (this.sources.has(arm) && arm !== this.experiment.champion) this.retired.set(arm, code);
    }
    if (state.winner !== null && this.sources.has(state.winner)) this.winner = state.winner;
  }
}
