import { hitAt, ndcgAt } from '../eval/metrics.ts';
import { HOLDOUT, type Experiment } from './definition.ts';
import { LatencyHistogram } from './latency.ts';

/**
 * Per-arm outcome accounting. Two kinds of observation, both keyed by cell (an arm's name, or `holdout`):
 *
 * - an outcome: the outcome join found the user's next action and the rank it had in the list the user was
 *   last served (−1 when it was not in the list): one trial of hit@K, one term of NDCG@K;
 * - a request: one scoring call, its latency and whether it failed.
 *
 * All counters are sums and the latency histogram is fixed-size, so memory is bounded and the snapshots of
 * several instances merge exactly ({@link mergeSnapshots}); the decision is computed from the merged one.
 */

export interface ArmCounts {
  /** Joined outcomes: trials of hit@K. */
  readonly trials: number;
  readonly hits: number;
  /** Σ NDCG@K over the trials (single relevant item, so each term lies in 0..1). */
  readonly ndcgSum: number;
  /** Σ NDCG@K², for the NDCG interval in status tables. */
  readonly ndcgSumSq: number;
  readonly requests: number;
  readonly errors: number;
  /** Sparse latency histogram, see {@link LatencyHistogram.toJSON}. */
  readonly latency: readonly (readonly [number, number])[];
}

/** JSON-able state of an experiment's accounting. */
export interface AccountingSnapshot {
  readonly experiment: string;
  readonly k: number;
  readonly cells: Readonly<Record<string, ArmCounts>>;
}

class Cell {
  trials = 0;
  hits = 0;
  ndcgSum = 0;
  ndcgSumSq = 0;
  requests = 0;
  errors = 0;
  readonly latency = new LatencyHistogram();

  toJSON(): ArmCounts {
    const { trials, hits, ndcgSum, ndcgSumSq, requests, errors } = this;
    return { trials, hits, ndcgSum, ndcgSumSq, requests, errors, latency: this.latency.toJSON() };
  }
}

export class ExperimentAccounting {
  private readonly cells = new Map<string, Cell>();

  constructor(readonly experiment: Experiment) {
    for (const arm of experiment.arms) this.cells.set(arm.name, new Cell());
    if (experiment.holdoutShare > 0) this.cells.set(HOLDOUT, new Cell());
  }

  /** One joined outcome: `rank` is the 0-based position of the next action in the served list, −1 if absent. */
  recordOutcome(cell: string, rank: number): void {
    const c = this.cell(cell);
    const ndcg = ndcgAt(rank, this.experiment.k);
    c.trials++;
    c.hits += hitAt(rank, this.experiment.k);
    c.ndcgSum += ndcg;
    c.ndcgSumSq += ndcg * ndcg;
  }

  /** One scoring request of the cell's scorer; `ok = false` counts an error (its latency is still recorded). */
  recordRequest(cell: string, latencyMs: number, ok = true): void {
    const c = this.cell(cell);
    c.requests++;
    if (!ok) c.errors++;
    if (Number.isFinite(latencyMs) && latencyMs >= 0) c.latency.add(latencyMs);
  }

  /** Counts of one cell; throws on an unknown cell. */
  counts(cell: string): Readonly<Cell> {
    return this.cell(cell);
  }

  /** p-quantile (0..1) of a cell's latency, ms (bucket upper bound). */
  latencyQuantile(cell: string, q: number): number {
    return this.cell(cell).latency.quantile(q);
  }

  snapshot(): AccountingSnapshot {
    const cells: Record<string, ArmCounts> = {};
    for (const [name, cell] of this.cells) cells[name] = cell.toJSON();
    return { experiment: this.experiment.name, k: this.experiment.k, cells };
  }

  /** Adds a snapshot (another instance's, or a saved one) into this accounting. */
  merge(snapshot: AccountingSnapshot): void {
    if (snapshot.experiment !== this.experiment.name || snapshot.k !== this.experiment.k) {
      throw new Error(`cannot merge accounting of ${snapshot.experiment}@${snapshot.k} into ${this.experiment.name}@${this.experiment.k}`);
    }
    for (const [name, counts] of Object.entries(snapshot.cells)) {
      const c = this.cell(name);
      c.trials += counts.trials;
      c.hits += counts.hits;
      c.ndcgSum += counts.ndcgSum;
      c.ndcgSumSq += counts.ndcgSumSq;
      c.requests += counts.requests;
      c.errors += counts.errors;
      c.latency.merge(LatencyHistogram.fromJSON(counts.latency));
    }
  }

  /** Replaces every count with a snapshot's (a checkpoint's); throws, changing nothing, on a cell this lacks. */
  replace(snapshot: AccountingSnapshot): void {
    new ExperimentAccounting(this.experiment).merge(snapshot);
    for (const name of this.cells.keys()) this.cells.set(name, new Cell());
    this.merge(snapshot);
  }

  private cell(name: string): Cell {
    const c = this.cells.get(name);
    if (!c) throw new RangeError(`experiment ${this.experiment.name} has no arm ${name}`);
    return c;
  }
}

/** The sum of several instances' snapshots of one experiment. */
export function mergeSnapshots(experiment: Experiment, snapshots: readonly AccountingSnapshot[]): ExperimentAccounting {
  const total = new ExperimentAccounting(experiment);
  for (const s of snapshots) total.merge(s);
  return total;
}
