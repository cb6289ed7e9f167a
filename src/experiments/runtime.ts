import { existsSync, mkdirSync, readdirSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import type { Interaction } from '../domain/events.ts';
import { errorCode, errorMessage } from '../errors/index.ts';
import { hitAt, ndcgAt } from '../eval/metrics.ts';
import type { Logger } from '../logging/logger.ts';
import { ExperimentAccounting, mergeSnapshots, type AccountingSnapshot } from './accounting.ts';
import { ArmRouter, type ArmRouterState } from './arms.ts';
import type { Arm, Experiment } from './definition.ts';
import { decide, type ExperimentReport, type Verdict, type VerdictCode } from './decide.ts';
import { OutcomeJoin, type JoinSnapshot } from './join.ts';
import type { Scorer } from '../star/port.ts';
import { writeAtomically } from '../util/files.ts';

/**
 * A running experiment in one pipeline instance: the router that serves the arms, the outcome join, the
 * accounting, and the looks that judge it (`decide.ts`) every `lookEveryMs` and at close.
 *
 * Each look writes `<stateDir>/<name>/latest.json` (the report, with what was applied and which arms serve),
 * a copy named by time whenever it applied something, and `state.json` (accounting, decisions, the join's
 * pending lists), so a restart goes on from where it stopped: the same counts, the same retired arms, and
 * the users' last lists still waiting for their next event. A look logs one line and moves the
 * `starstream_experiment_*` metrics.
 *
 * Several instances (a consumer group; users are theirs by partition, so each joins its own users' outcomes)
 * share one `stateDir` when each has an `instance` name: each writes `instances/<instance>.json` instead of
 * `state.json`, and each look judges the sum of its live counts and every other instance's saved ones (the
 * counters are sums: `mergeSnapshots`), and first takes over the decisions the others recorded. A file left by
 * an instance that is gone stays in the sum: its outcomes happened. Whoever looks last wrote `latest.json`.
 *
 * What a look applies (each at most once):
 * - a challenger judged `rollback` (guardrail or hit rate) is retired at once: its users go to the champion;
 * - `promote`: the challenger with the highest lower bound wins; a STAR arm is published as the registry
 *   champion through `promote` (the registry's poll or reload swaps it in everywhere), and the experiment is
 *   concluded: the winner serves every user of this instance from then on;
 * - every challenger retired, or the rest `inconclusive` (the maximum duration): concluded, the champion
 *   serves everyone.
 *
 * With checkpoints (the embedded store with a snapshot path), the counts and pending lists also go into each
 * checkpoint ({@link ExperimentRuntime.checkpointAttachment}), with the offsets they reflect; on restart the
 * checkpoint's replace those of `state.json`, so records consumed again after a crash are counted once.
 * Decisions (retired arms, a conclusion) come from `state.json` either way: a promotion published to the
 * registry is never undone by restoring an older checkpoint. Without checkpoints, state and offsets are not
 * written together: after a crash, outcomes counted since the last look may be counted again, or lost with
 * their process. A clean stop (close after the runner has stopped) loses and repeats nothing.
 */

export const EXPERIMENT_STATE_VERSION = 'experiment-state-1';

/** Folder of the per-instance state files when several instances share `stateDir`. */
const INSTANCES = 'instances';

/** An instance's name in reports: its `instance`, or `default` for the one that writes `state.json`. */
const instanceName = (instance: string | null): string => instance ?? 'default';

/** What the runtime reports to the metrics (`src/ops/metrics.ts` maps it onto the catalog). */
export interface ExperimentInstruments {
  experimentOutcome(experiment: string, cell: string, hit: boolean, ndcg: number): void;
  experimentRequest(experiment: string, arm: string, seconds: number, ok: boolean): void;
  experimentLook(report: AppliedReport): void;
}

export interface AppliedAction {
  readonly arm: string;
  readonly action: 'retired' | 'promoted' | 'concluded';
  readonly verdict: Verdict;
  readonly code: VerdictCode | null;
  /** What promotion did (published to the registry, or why not). */
  readonly note: string | null;
}

/** The decision report of one look (`experiment-report-1`), with what the look applied and what serves now. */
export interface AppliedReport extends ExperimentReport {
  readonly atMs: number;
  readonly applied: readonly AppliedAction[];
  /** Arm name → true while it serves users of its own (not retired, not concluded away). */
  readonly serving: Readonly<Record<string, boolean>>;
  /** The arm that serves everyone once the experiment is concluded; null while it runs. */
  readonly concludedWith: string | null;
  /** The instances whose counts the look summed, this one first (`default`: the one without `instance`). */
  readonly instances: readonly string[];
}

/** The counts that move with the stream's offsets: what a checkpoint carries. */
interface CountedState {
  readonly stateVersion: string;
  readonly experiment: string;
  readonly salt: string;
  readonly accounting: AccountingSnapshot;
  readonly join: JoinSnapshot;
}

/** `state.json`: the counts, and the decisions taken. */
interface SavedState extends CountedState {
  readonly router: ArmRouterState;
  readonly savedAtMs: number;
}

export interface ExperimentRuntimeOptions {
  readonly experiment: Experiment;
  /** One per arm: its serving scorer now. */
  readonly sources: ReadonlyMap<string, () => Scorer>;
  readonly logger: Logger;
  readonly instruments?: ExperimentInstruments;
  /**
   * Publishes a promoted arm as the champion where that exists (a STAR version → the registry's `CURRENT`);
   * resolves to a note of what was done, or of why nothing could be.
   */
  readonly promote?: (arm: Arm) => Promise<string>;
  readonly clock?: () => number;
}

export class ExperimentRuntime {
  readonly experiment: Experiment;
  readonly router: ArmRouter;
  readonly accounting: ExperimentAccounting;
  readonly join: OutcomeJoin;
  private readonly log: Logger;
  private readonly clock: () => number;
  private timer: NodeJS.Timeout | null = null;
  private looking: Promise<AppliedReport> | null = null;
  private closed = false;

  constructor(private readonly options: ExperimentRuntimeOptions) {
    const { experiment, instruments } = options;
    this.experiment = experiment;
    this.log = options.logger.child({ component: 'experiment', experiment: experiment.name });
    this.clock = options.clock ?? Date.now;
    this.accounting = new ExperimentAccounting(experiment);
    this.router = new ArmRouter(experiment, options.sources, (cell, arm, latencyMs, ok) => {
      if (cell !== null) this.accounting.recordRequest(cell, latencyMs, ok);
      instruments?.experimentRequest(experiment.name, arm, latencyMs / 1000, ok);
    });
    this.join = new OutcomeJoin((cell, rank) => {
      this.accounting.recordOutcome(cell, rank);
      instruments?.experimentOutcome(experiment.name, cell, hitAt(rank, experiment.k) === 1, ndcgAt(rank, experiment.k));
    });
    this.restore();
  }

  /** Folder of this experiment's state and reports. */
  get dir(): string {
    return join(this.experiment.stateDir, this.experiment.name);
  }

  /** The processor's interaction listener: joins the event to its user's previous list. */
  observe(event: Interaction): void {
    this.join.observe(event);
  }

  /**
   * The processor's ranked listener: the list served for `event`, counted in `cell` (the one its scorer was
   * routed with, `ArmScorer.cell`: the user is hashed once per event; null: outside the experiment).
   */
  served(event: Interaction, itemIds: readonly string[], cell: string | null): void {
    this.join.served(event, itemIds, cell);
  }

  /** Starts the periodic looks (`lookEveryMs`; 0 = none). */
  start(): void {
    if (this.experiment.lookEveryMs === 0 || this.timer) return;
    this.timer = setInterval(() => {
      this.look().catch((err: unknown) => this.log.error({ code: errorCode(err), err: errorMessage(err) }, 'experiment look failed'));
    }, this.experiment.lookEveryMs);
    this.timer.unref();
  }

  /** Judges the experiment now, applies what it decided, and writes the report and the state. */
  look(): Promise<AppliedReport> {
    // One look at a time: a slow promotion must not be applied twice by the next tick.
    this.looking ??= this.lookOnce().finally(() => {
      this.looking = null;
    });
    return this.looking;
  }

  /** A last look, then the state is saved; the arms' scorers are the caller's to close. Idempotent. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    if (this.timer) clearInterval(this.timer);
    await this.look();
  }

  /**
   * The experiment's part of a store checkpoint (`EmbeddedCheckpointer.attach`): the counts and pending lists,
   * taken with the offsets they reflect; restoring them replaces what `state.json` gave.
   */
  checkpointAttachment(): { capture(): unknown; restore(saved: unknown): void } {
    return {
      capture: () => this.countedState(),
      restore: (saved) => this.restoreCounted(saved as CountedState, 'checkpoint'),
    };
  }

  private countedState(): CountedState {
    return {
      stateVersion: EXPERIMENT_STATE_VERSION,
      experiment: this.experiment.name,
      salt: this.experiment.salt,
      accounting: this.accounting.snapshot(),
      join: this.join.snapshot(),
    };
  }

  /** Replaces counts and pending lists with saved ones of this experiment; false (a warning) when they are not. */
  private restoreCounted(state: CountedState, from: string): boolean {
    if (!this.isOurs(state)) {
      this.log.warn({ from }, 'experiment state of another experiment, salt or version: not restored');
      return false;
    }
    try {
      this.accounting.replace(state.accounting);
    } catch (err) {
      // Arms changed (a cell the experiment no longer has): counting starts afresh.
      this.log.warn({ code: errorCode(err), err: errorMessage(err), from }, 'experiment counts not restored: starting afresh');
      return false;
    }
    this.join.restore(state.join);
    this.log.info({ from }, 'experiment counts restored');
    return true;
  }

  private async lookOnce(): Promise<AppliedReport> {
    const others = this.readOthers();
    // Decisions another instance took hold here too (monotonic: retired arms stay retired, a winner stays).
    for (const other of others) this.router.restore(other.state.router);
    const report = decide(this.experiment, others.length === 0 ? this.accounting : this.summedWith(others));
    const applied = this.router.concludedWith === null ? await this.apply(report) : [];
    const winner = this.router.concludedWith;
    const serving: Record<string, boolean> = {};
    for (const arm of this.experiment.arms) serving[arm.name] = winner === null ? !this.router.isRetired(arm.name) : winner === arm.name;
    const instances = [instanceName(this.experiment.instance), ...others.map((o) => o.instance)];
    const full: AppliedReport = { ...report, atMs: this.clock(), applied, serving, concludedWith: winner, instances };
    await this.write(full);
    this.options.instruments?.experimentLook(full);
    const line = { decision: full.decision, arm: full.arm, code: full.code, outcomes: full.outcomes, applied: applied.map((a) => `${a.action} ${a.arm}`) };
    if (applied.length > 0) this.log.warn(line, full.summary);
    else this.log.info(line, full.summary);
    return full;
  }

  /** Where this instance keeps its state: `instances/<instance>.json`, or `state.json` without an instance name. */
  private get statePath(): string {
    const { instance } = this.experiment;
    return instance === null ? join(this.dir, 'state.json') : join(this.dir, INSTANCES, `${instance}.json`);
  }

  /** The saved states of the other instances that share this folder (files of another experiment are skipped, with a warning). */
  private readOthers(): { instance: string; state: SavedState }[] {
    const folder = join(this.dir, INSTANCES);
    const names = existsSync(folder) ? readdirSync(folder).filter((f) => f.endsWith('.json')).sort() : [];
    const candidates = [
      { instance: instanceName(null), path: join(this.dir, 'state.json') },
      ...names.map((f) => ({ instance: f.slice(0, -'.json'.length), path: join(folder, f) })),
    ];
    const others: { instance: string; state: SavedState }[] = [];
    for (const { instance, path } of candidates) {
      if (path === this.statePath || !existsSync(path)) continue;
      try {
        const state = JSON.parse(readFileSync(path, 'utf8')) as SavedState;
        if (!this.isOurs(state)) throw new Error('state of another experiment, salt or version');
        // A cell this experiment lacks throws here, before anything is summed.
        new ExperimentAccounting(this.experiment).merge(state.accounting);
        others.push({ instance, state });
      } catch (err) {
        this.log.warn({ code: errorCode(err), err: errorMessage(err), path }, 'another instance\'s experiment state skipped');
      }
    }
    return others;
  }

  /** This instance's live counts plus the others' saved ones: what a look judges when several instances run. */
  private summedWith(others: readonly { state: SavedState }[]): ExperimentAccounting {
    return mergeSnapshots(this.experiment, [this.accounting.snapshot(), ...others.map((o) => o.state.accounting)]);
  }

  private isOurs(state: CountedState): boolean {
    return state.stateVersion === EXPERIMENT_STATE_VERSION && state.experiment === this.experiment.name && state.salt === this.experiment.salt;
  }

  private async apply(report: ExperimentReport): Promise<AppliedAction[]> {
    const applied: AppliedAction[] = [];
    const live = report.challengers.filter((c) => !this.router.isRetired(c.arm));
    for (const c of live) {
      if (c.verdict !== 'rollback') continue;
      this.router.retire(c.arm, c.code);
      applied.push({ arm: c.arm, action: 'retired', verdict: 'rollback', code: c.code, note: c.reason });
    }
    const promoted = live.filter((c) => c.verdict === 'promote').sort((a, b) => (b.test.lower ?? -Infinity) - (a.test.lower ?? -Infinity))[0];
    if (promoted) {
      const arm = this.experiment.arms.find((a) => a.name === promoted.arm)!;
      let note: string;
      try {
        note = this.options.promote ? await this.options.promote(arm) : 'no champion to publish: the winner serves this instance';
      } catch (err) {
        note = `publishing failed (${errorCode(err)}): ${errorMessage(err)}; the winner serves this instance`;
        this.log.error({ code: errorCode(err), arm: arm.name, err: errorMessage(err) }, 'experiment promotion: publishing failed');
      }
      this.router.conclude(arm.name);
      applied.push({ arm: arm.name, action: 'promoted', verdict: 'promote', code: promoted.code, note });
      return applied;
    }
    const running = report.challengers.filter((c) => !this.router.isRetired(c.arm));
    if (running.length === 0 || running.every((c) => c.verdict === 'inconclusive')) {
      const verdict: Verdict = running.length === 0 ? 'rollback' : 'inconclusive';
      this.router.conclude(this.experiment.champion);
      applied.push({ arm: this.experiment.champion, action: 'concluded', verdict, code: running[0]?.code ?? null, note: 'the champion serves every user' });
    }
    return applied;
  }

  private async write(report: AppliedReport): Promise<void> {
    // Snapshotted before the first write yields to the pipeline, so it goes with the report written beside it.
    const state: SavedState = { ...this.countedState(), router: this.router.state(), savedAtMs: report.atMs };
    try {
      mkdirSync(dirname(this.statePath), { recursive: true });
      await writeJson(join(this.dir, 'latest.json'), report);
      if (report.applied.length > 0) await writeJson(join(this.dir, `decision-${new Date(report.atMs).toISOString().replace(/[:.]/g, '-')}.json`), report);
      await writeJson(this.statePath, state);
    } catch (err) {
      // The experiment goes on in memory; the next look tries again.
      this.log.error({ code: errorCode(err), err: errorMessage(err), dir: this.dir }, 'experiment state not written');
    }
  }

  private restore(): void {
    const path = this.statePath;
    if (!existsSync(path)) return;
    let state: SavedState;
    try {
      state = JSON.parse(readFileSync(path, 'utf8')) as SavedState;
    } catch (err) {
      this.log.warn({ code: errorCode(err), err: errorMessage(err), path }, 'experiment state not restored (damaged file): starting afresh');
      return;
    }
    if (!this.restoreCounted(state, path)) return;
    this.router.restore(state.router);
    this.log.info({ path, router: state.router }, 'experiment decisions restored');
  }
}

/** Reads the latest report of an experiment (`starstream experiment status`); null when there is none. */
export function readLatestReport(stateDir: string, name: string): AppliedReport | null {
  const path = join(stateDir, name, 'latest.json');
  if (!existsSync(path)) return null;
  return JSON.parse(readFileSync(path, 'utf8')) as AppliedReport;
}

function writeJson(path: string, value: unknown): Promise<void> {
  return writeAtomically(path, `${JSON.stringify(value, null, 2)}\n`);
}
