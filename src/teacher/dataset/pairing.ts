import { join } from 'node:path';
import type { LabelledTrajectory, TeacherCase, Trajectory } from '../../domain/teacher.ts';
import { errorMessage, FatalError } from '../../errors/index.ts';
import type { FileSystem } from '../../util/files.ts';
import { Journal } from '../outcomes/journal.ts';
import type { JoinResult, LabelledCase } from '../outcomes/join.ts';
import { labelTrajectory } from './label.ts';

/**
 * Pairs each teacher trajectory with its case's outcome, whichever comes first (the teacher may finish before
 * or after the user's next interaction), and hands the `LabelledTrajectory` to `sink` (the dataset writer,
 * a trajectories topic). What waits for its other half is journaled in `<dataDir>/pairing.journal.jsonl`, so
 * it survives restarts.
 *
 * A case the outcome join could not label (`unjoinable`) drops its trajectory (counted through `onDropped`),
 * as there is no label to attach. Outcomes for cases the teacher never ran (it failed before recording, or
 * the case is not the teacher's) wait until `maxPending` newer ones push them out, also counted.
 *
 * At least once: `sink` runs before the journal records the pair as done, so after a crash a pair may be
 * handed on again (readers de-duplicate on `caseId`).
 *
 * Calls run one at a time, in call order (the labeller's two consumers call concurrently). A call whose sink
 * or journal append fails (a full disk) changes nothing: the state is read back from the journal, as after a
 * crash, and the error goes to the caller, whose batch then comes again and pairs the same halves again. A
 * half that comes again after its pair was made (the last `maxPending` pairs are remembered) is ignored.
 */

export type PairingEntry =
  | { readonly t: 'trajectory'; readonly trajectory: Trajectory }
  | { readonly t: 'outcome'; readonly labelled: LabelledCase }
  | { readonly t: 'drop'; readonly caseId: string }
  | { readonly t: 'done'; readonly caseId: string };

export interface PairingOptions {
  readonly dataDir: string;
  readonly compactAfterEntries: number;
  /** Outcomes and trajectories waiting for their other half, each; the oldest is dropped beyond it. */
  readonly maxPending: number;
  readonly sink: (records: LabelledTrajectory[]) => Promise<void>;
  readonly onDropped?: (why: 'unjoinable' | 'overflow', caseId: string) => void;
  readonly onTornTail?: (bytes: number) => void;
  /** The journal's file operations (tests inject a failing one); `node:fs` by default. */
  readonly fs?: FileSystem;
}

export const PAIRING_JOURNAL_FILE = 'pairing.journal.jsonl';

export class TrajectoryPairing {
  private readonly trajectories = new Map<string, Trajectory>();
  private readonly outcomes = new Map<string, LabelledCase>();
  private readonly dropped = new Set<string>();
  /** Cases paired lately, oldest first, at most `maxPending`. */
  private readonly paired = new Set<string>();
  private queue: Promise<unknown> = Promise.resolve();

  private constructor(
    private readonly options: PairingOptions,
    private journal: Journal<PairingEntry> | null,
  ) {}

  static async open(options: PairingOptions): Promise<TrajectoryPairing> {
    const pairing = new TrajectoryPairing(options, null);
    await pairing.load();
    return pairing;
  }

  /** (Re)builds the state from the journal. */
  private async load(): Promise<void> {
    const o = this.options;
    for (const state of [this.trajectories, this.outcomes, this.dropped, this.paired]) state.clear();
    this.journal = await Journal.open<PairingEntry>(
      join(o.dataDir, PAIRING_JOURNAL_FILE),
      (e) => this.restore(e),
      { ...(o.onTornTail ? { onTornTail: o.onTornTail } : {}), ...(o.fs ? { fs: o.fs } : {}) },
    );
  }

  get pending(): { readonly trajectories: number; readonly outcomes: number } {
    return { trajectories: this.trajectories.size, outcomes: this.outcomes.size };
  }

  /** Trajectories from the teacher. */
  addTrajectories(trajectories: readonly Trajectory[]): Promise<void> {
    return this.serial(() => this.pairTrajectories(trajectories));
  }

  /** What the outcome join resolved: its `sink`. */
  addOutcomes(result: JoinResult): Promise<void> {
    return this.serial(() => this.pairOutcomes(result));
  }

  private async pairTrajectories(trajectories: readonly Trajectory[]): Promise<void> {
    const entries: PairingEntry[] = [];
    const out: LabelledTrajectory[] = [];
    for (const t of trajectories) {
      if (this.dropped.has(t.caseId) || this.paired.has(t.caseId)) continue;
      const labelled = this.outcomes.get(t.caseId);
      if (labelled) {
        this.outcomes.delete(t.caseId);
        this.markPaired(t.caseId);
        out.push(labelTrajectory(t, labelled));
        entries.push({ t: 'done', caseId: t.caseId });
      } else {
        this.trajectories.set(t.caseId, t);
        entries.push({ t: 'trajectory', trajectory: t });
        this.overflow(this.trajectories, entries);
      }
    }
    await this.finish(out, entries);
  }

  private async pairOutcomes(result: JoinResult): Promise<void> {
    const entries: PairingEntry[] = [];
    const out: LabelledTrajectory[] = [];
    for (const labelled of result.labelled) {
      const caseId = labelled.case.caseId;
      if (this.paired.has(caseId)) continue;
      const t = this.trajectories.get(caseId);
      if (t) {
        this.trajectories.delete(caseId);
        this.markPaired(caseId);
        out.push(labelTrajectory(t, labelled));
        entries.push({ t: 'done', caseId });
      } else {
        this.outcomes.set(caseId, labelled);
        entries.push({ t: 'outcome', labelled });
        this.overflow(this.outcomes, entries);
      }
    }
    for (const c of result.unjoinable) this.drop(c, entries);
    await this.finish(out, entries);
  }

  async close(): Promise<void> {
    await this.queue;
    await this.journal!.flush();
  }

  private serial(fn: () => Promise<void>): Promise<void> {
    const next = this.queue.then(fn, fn);
    this.queue = next.catch(() => undefined);
    return next;
  }

  private markPaired(caseId: string): void {
    this.paired.add(caseId);
    if (this.paired.size > this.options.maxPending) this.paired.delete(this.paired.values().next().value!);
  }

  private drop(c: TeacherCase, entries: PairingEntry[]): void {
    this.trajectories.delete(c.caseId);
    this.dropped.add(c.caseId);
    entries.push({ t: 'drop', caseId: c.caseId });
    this.options.onDropped?.('unjoinable', c.caseId);
  }

  private overflow<V>(map: Map<string, V>, entries: PairingEntry[]): void {
    while (map.size > this.options.maxPending) {
      const oldest = map.keys().next().value as string;
      map.delete(oldest);
      this.dropped.add(oldest);
      entries.push({ t: 'drop', caseId: oldest });
      this.options.onDropped?.('overflow', oldest);
    }
  }

  private async finish(out: LabelledTrajectory[], entries: PairingEntry[]): Promise<void> {
    try {
      if (out.length > 0) await this.options.sink(out);
      await this.journal!.append(entries);
    } catch (err) {
      // Undo this call: back to what the journal holds. Its halves, handed in again, pair again.
      try {
        await this.load();
      } catch (cause) {
        throw new FatalError('PAIRING_STATE_LOST', `pairing: a failed call (${errorMessage(err)}) could not be undone from the journal`, { cause });
      }
      throw err;
    }
    const journal = this.journal!;
    if (journal.entries >= this.options.compactAfterEntries) await journal.compact(this.snapshot());
  }

  private restore(e: PairingEntry): void {
    if (e.t === 'trajectory') this.trajectories.set(e.trajectory.caseId, e.trajectory);
    else if (e.t === 'outcome') this.outcomes.set(e.labelled.case.caseId, e.labelled);
    else {
      this.trajectories.delete(e.caseId);
      this.outcomes.delete(e.caseId);
      if (e.t === 'drop') this.dropped.add(e.caseId);
      else this.markPaired(e.caseId);
    }
  }

  private snapshot(): PairingEntry[] {
    return [
      ...[...this.trajectories.values()].map((trajectory) => ({ t: 'trajectory', trajectory }) as const),
      ...[...this.outcomes.values()].map((labelled) => ({ t: 'outcome', labelled }) as const),
    ];
  }
}
