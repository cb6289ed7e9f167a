import type { ScoringCase } from '../domain/evidence.ts';

/**
 * Scores candidate lists. The baseline scorer reads evidence features; STAR (onnx/) reads the rendered case.
 * A scorer may batch several cases into one forward pass, so it takes many at once.
 */
export interface Scorer {
  /** e.g. `baseline-1` or `star-2026-11-25.3`; published with every recommendation. */
  readonly modelVersion: string;
  /** True when scores depend on the evidence sentences (STAR); the pipeline then renders them for all. */
  readonly readsSentences: boolean;
  /**
   * The online experiment's arm this scorer serves (`src/experiments/arms.ts`), published with every
   * recommendation; unset outside an experiment.
   */
  readonly arm?: string;
  /** The experiment cell the lists it scores count in (its arm, or the holdout); null or unset: none. */
  readonly cell?: string | null;
  /** One score per candidate, aligned with `case.candidates`; higher is better. */
  score(cases: readonly ScoringCase[]): Promise<Float32Array[]>;
  close(): Promise<void>;
}
