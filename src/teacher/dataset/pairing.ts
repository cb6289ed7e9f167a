import { join } from 'node:path';
import type { LabelledTrajectory, TeacherCase, Trajectory } from '../../domain/teacher.ts';
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
}

export const PAIRING_JOURNAL_FILE = 'pairing.journal.jsonl';

export class TrajectoryPairing {
  private readonly trajectories = new Map<string, Trajectory>();
  private readonly outcomes = new Map<string, LabelledCase>();
  private readonly dropped = new Set<string>();

  private constructor(
    private readonly options: PairingOptions,
    private journal: Journal<PairingEntry> | null,
  ) {}

  static async open(options: PairingOptions): Promise<TrajectoryPairing> {
    const pairing = new TrajectoryPairing(options, null);
    pairing.journal = await Journal.open<PairingEntry>(
      join(options.dataDir, PAIRING_JOURNAL_FILE),
      (e) => pairing.restore(e),
      options.onTornTail ? { onTornTail: options.onTornTail } : {},
    );
    return pairing;
  }

  get pending(): { readonly trajectories: number; readonly outcomes: number } {
    return { trajectories: this.trajectories.size, outcomes: this.outcomes.size };
  }

  /** Trajectories from the teacher. */
  async addTrajectories(trajectories: readonly Trajectory[]): Promise<void> {
    const entries: PairingEntry[] = [];
    const out: LabelledTrajectory[] = [];
    for (const t of trajectories) {
      if (this.dropped.has(t.caseId)) continue;
      const labelled = this.outcomes.get(t.caseId);
      if (labelled) {
        this.outcomes.delete(t.caseId);
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

  /** What the outcome join resolved: its `sink`. */
  async addOutcomes(result: JoinResult): Promise<void> {
    const entries: PairingEntry[] = [];
    const out: LabelledTrajectory[] = [];
    for (const labelled of result.labelled) {
      const caseId = labelled.case.caseId;
      const t = this.trajectories.get(caseId);
      if (t) {
        this.trajectories.delete(caseId);
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
    await this.journal!.flush();
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
    if (out.length > 0) await this.options.sink(out);
    const journal = this.journal!;
    await journal.append(entries);
    if (journal.entries >= this.options.compactAfterEntries) await journal.compact(this.snapshot());
  }

  private restore(e: PairingEntry): void {
    if (e.t === 'trajectory') this.trajectories.set(e.trajectory.caseId, e.trajectory);
    else if (e.t === 'outcome') this.outcomes.set(e.labelled.case.caseId, e.labelled);
    else {
      this.trajectories.delete(e.caseId);
      this.outcomes.delete(e.caseId);
      if (e.t === 'drop') this.dropped.add(e.caseId);
    }
  }

  private snapshot(): PairingEntry[] {
    return [
      ...[...this.trajectories.values()].map((trajectory) => ({ t: 'trajectory', trajectory }) as const),
      ...[...this.outcomes.values()].map((labelled) => ({ t: 'outcome', labelled }) as const),
    ];
  }
}
