/**
 * The side stream's domain: cases sampled from the live stream for the MARS teacher, the trajectories the
 * teacher writes for them, and the outcomes that label both. Shared by the sampler (stages/sampling), the
 * teacher (teacher/) and the dataset export that `train/` reads.
 */
import type { CollaborativeEvidence, UserContext } from './evidence.ts';

/** Why the sampler picked a case. */
export const SAMPLING_REASONS = ['uniform', 'uncertain', 'cold-user', 'long-tail'] as const;
export type SamplingReason = (typeof SAMPLING_REASONS)[number];

/**
 * One case for the teacher: everything it may know at the moment of the event, and nothing after it.
 * The true next item is not in it: the candidate list is what the pipeline ranked, and the outcome join
 * fills in what the user did next.
 */
export interface TeacherCase {
  /** `case-<eventId>`: one case per triggering event. */
  readonly caseId: string;
  readonly eventId: string;
  readonly atMs: number;
  readonly reason: SamplingReason;
  /** For `uncertain`: the margin between STAR's two top scores; for others null. */
  readonly margin: number | null;
  readonly user: UserContext;
  /** In the order the serving scorer ranked them, best first, with the CST evidence available then. */
  readonly candidates: readonly CollaborativeEvidence[];
  /** The serving scorer's score per candidate, aligned with `candidates`. */
  readonly studentScores: readonly number[];
  readonly studentModel: string;
  readonly templateVersion: string;
}

/** What the user did next, joined to a case. `rank` values are 1-based, null when the item was not listed. */
export type CaseOutcome =
  | {
      readonly status: 'observed';
      /** The first item the user interacted with after the case, within the horizon. */
      readonly nextItemId: string;
      readonly observedAtMs: number;
      /** Rank of that item in the serving scorer's list. */
      readonly studentRank: number | null;
    }
  | { readonly status: 'expired'; readonly horizonMs: number };

/** One step of a teacher run, in the order it happened. */
export type TrajectoryStep =
  | { readonly kind: 'plan'; readonly agent: 'planner'; readonly text: string; readonly tasks: readonly string[] }
  | {
      readonly kind: 'tool_call';
      readonly agent: string;
      readonly tool: string;
      readonly args: Readonly<Record<string, unknown>>;
    }
  | {
      readonly kind: 'tool_response';
      readonly agent: string;
      readonly tool: string;
      readonly text: string;
      /** True when the call was refused (bad arguments, an unknown tool or id) and `text` says why. */
      readonly error?: boolean;
      readonly ms?: number;
    }
  | { readonly kind: 'finding'; readonly agent: string; readonly text: string }
  | {
      readonly kind: 'reflection';
      readonly agent: 'reflector';
      readonly text: string;
      /** Analysts sent back for another round; empty when the reflector accepted. */
      readonly sendBack: readonly string[];
    }
  | {
      readonly kind: 'recommend';
      readonly agent: 'ranker';
      readonly ranking: readonly string[];
      readonly justification: string;
      /**
       * Set when the ranker's last allowed answer was not a permutation of the candidates and the teacher
       * repaired it (duplicates dropped, missing ids appended in the serving order); see `teacher/agents/ranker.ts`.
       */
      readonly repaired?: { readonly duplicates: readonly string[]; readonly appended: readonly string[] };
    };

/** One LLM call: the accounting behind a step. */
export interface AgentTurn {
  readonly agent: string;
  readonly attempt: number;
  readonly promptTokens: number;
  readonly completionTokens: number;
  readonly ms: number;
  /** Null when the answer was valid; otherwise why it was refused (it was retried or the case failed). */
  readonly error: string | null;
}

/** A complete teacher run over one case. */
export interface Trajectory {
  readonly caseId: string;
  readonly backend: string;
  readonly model: string;
  readonly startedAtMs: number;
  readonly ms: number;
  readonly steps: readonly TrajectoryStep[];
  readonly turns: readonly AgentTurn[];
  /** The final ranking (item ids, best first); empty when the run failed. */
  readonly ranking: readonly string[];
  readonly status: 'completed' | 'failed';
  /**
   * Why a failed run failed, as `CODE: message` (a limit, repeated malformed answers, the backend); the codes
   * are `FAILURE_CODES` in `teacher/limits.ts`.
   */
  readonly failure: string | null;
  /**
   * The steps as one text with <plan>, <tool_call>, <tool_response>, <finding>, <reflection> and <recommend>
   * markers (`teacher/trajectories/serialize.ts`).
   */
  readonly serialized: string;
}

/** A trajectory with its case and outcome: one line of the distillation data set. */
export interface LabelledTrajectory {
  readonly case: TeacherCase;
  readonly trajectory: Trajectory;
  readonly outcome: CaseOutcome;
  /** Rank of the observed item in the teacher's ranking (1-based), null when absent or expired. */
  readonly teacherRank: number | null;
}
