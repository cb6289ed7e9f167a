import type { ScoringCase } from '../domain/evidence.ts';
import type { TeacherCase, Trajectory } from '../domain/teacher.ts';
import type { Rng } from '../data/random.ts';
import { headPopularity, toTeacherCase, type ScoredCandidate } from '../stages/sampling/index.ts';
import type { CstTemplates } from '../cst/index.ts';
import type { VectorStore } from '../store/port.ts';
import type { LanguageModel } from '../teacher/llm/port.ts';
import { failureCodeOf, type TeacherLimits } from '../teacher/limits.ts';
import { runTeacher } from '../teacher/run.ts';
import type { ToolEvidenceOptions } from '../teacher/tools/index.ts';
import type { Scorer } from '../star/port.ts';

/**
 * The MARS teacher as a system of the evaluation harness. It is far slower than everything else (seconds
 * to minutes per case), so it ranks a sample of the paper-protocol cases sized to a wall-time budget, and
 * the harness scores every other system on that same sample too (the `teacher-sample` slice).
 *
 * **Sampling** (`TeacherSampler`): the first test case calibrates (it always runs); after that each case
 * is taken with probability p = (budget left / mean seconds per run so far) / (cases still to come), drawn
 * from `rng.fork(eventId)`, so the sample spreads over the whole test window instead of its first hours.
 * Sampling stops when less than half a mean run is left. Only teacher runs count against the budget, not
 * loading the model. A run is cut at the budget left (its per-case wall limit is lowered to it); a run cut
 * that way is dropped from the sample, as the budget, not the teacher, ended it.
 *
 * **A run** happens inside the replay, before the event is learned, so the teacher's tools read the store
 * as it was at the case (as in the stream, where the worker runs seconds behind: see `AsOfReader`). The case
 * goes to the teacher the way the pipeline sends it (`toTeacherCase`): its candidates in the serving
 * ranker's order, best first. A completed run's ranking is the teacher's answer; a failed run (a limit, a
 * malformed answer) leaves the serving order, as the pipeline would serve it, and is counted as failed.
 */

/** One teacher run over one case. */
export interface TeacherAnswer {
  /** The teacher's order of the case's candidates (item ids, best first); null when the run failed. */
  readonly ranking: readonly string[] | null;
  /** `CODE: message` of a failed run. */
  readonly failure: string | null;
  readonly ms: number;
  /** The run hit the lowered wall limit (the budget left), not the teacher's own per-case limit. */
  readonly cutByBudget: boolean;
  /** The case as the teacher saw it and its whole trajectory, for callers that keep them (distillation data). */
  readonly run?: { readonly teacherCase: TeacherCase; readonly trajectory: Trajectory };
}

export interface TeacherRanker {
  /** `backend/model`, recorded in the report. */
  readonly version: string;
  /** Ranks the case; `servingScores` order the candidates as the pipeline would send them; `limitMs` caps the run. */
  rank(scoringCase: ScoringCase, servingScores: Float32Array, limitMs: number): Promise<TeacherAnswer>;
}

export interface MarsRankerDeps {
  readonly model: LanguageModel;
  readonly store: VectorStore;
  readonly limits: TeacherLimits;
  readonly templates: CstTemplates;
  readonly evidence: ToolEvidenceOptions;
  /** Version of the serving ranker whose order the case carries. */
  readonly servingModel: string;
}

export function createMarsRanker(deps: MarsRankerDeps): TeacherRanker {
  return {
    version: `${deps.model.backend}/${deps.model.model}`,
    rank: async (scoringCase, servingScores, limitMs) => {
      const ranked: ScoredCandidate[] = scoringCase.candidates
        .map((evidence, i) => ({ evidence, score: servingScores[i]!, i }))
        .sort((a, b) => b.score - a.score || a.i - b.i)
        .map(({ evidence, score }) => ({ evidence, score }));
      const teacherCase = toTeacherCase(
        { eventId: scoringCase.eventId, atMs: scoringCase.atMs, user: scoringCase.user, ranked, headPopularity: headPopularity(scoringCase.candidates) },
        { reason: 'uniform', margin: null },
        ranked.map((r) => r.evidence),
        { studentModel: deps.servingModel, templateVersion: deps.templates.version },
      );
      const maxWallMs = Math.max(1, Math.min(deps.limits.maxWallMs, Math.floor(limitMs)));
      const limits = { ...deps.limits, maxWallMs };
      const trajectory = await runTeacher(teacherCase, { model: deps.model, store: deps.store, limits, templates: deps.templates, evidence: deps.evidence });
      const completed = trajectory.status === 'completed';
      return {
        ranking: completed ? trajectory.ranking : null,
        failure: completed ? null : trajectory.failure,
        ms: trajectory.ms,
        cutByBudget: !completed && maxWallMs < deps.limits.maxWallMs && failureCodeOf(trajectory.failure) === 'TIME_LIMIT',
        run: { teacherCase, trajectory },
      };
    },
  };
}

/** A sampled teacher run: the answer, the serving scores the case was sent with, and the wall time booked. */
export interface SampledRun {
  readonly answer: TeacherAnswer;
  readonly serving: Float32Array;
  readonly wallMs: number;
}

/**
 * Offers a case to the sampler; when it is taken, runs the teacher on it in the serving scorer's order, capped
 * at the budget left, and books the wall time. Null when the sampler passed on it.
 */
export async function sampledTeacherRun(
  sampler: TeacherSampler,
  teacher: { readonly ranker: TeacherRanker; readonly servingScorer: Scorer },
  scoringCase: ScoringCase,
  casesToCome: number,
): Promise<SampledRun | null> {
  if (!sampler.offer(scoringCase.eventId, casesToCome)) return null;
  const t0 = performance.now();
  const [serving] = await teacher.servingScorer.score([scoringCase]);
  const answer = await teacher.ranker.rank(scoringCase, serving!, sampler.remainingMs);
  const wallMs = performance.now() - t0;
  sampler.record(wallMs);
  return { answer, serving: serving!, wallMs };
}

/** Decides which cases the teacher ranks, within a wall-time budget (see the module doc). */
export class TeacherSampler {
  private spent = 0;
  private runs = 0;

  constructor(
    private readonly budgetMs: number,
    private readonly rng: Rng,
  ) {}

  get remainingMs(): number {
    return this.budgetMs - this.spent;
  }

  /** Wall time of the runs booked so far. */
  get spentMs(): number {
    return this.spent;
  }

  /** Whether the teacher should rank this case; `casesToCome` counts it and every later test case. */
  offer(eventId: string, casesToCome: number): boolean {
    if (this.remainingMs <= 0) return false;
    if (this.runs === 0) return true;
    const meanMs = this.spent / this.runs;
    if (this.remainingMs < 0.5 * meanMs) return false;
    const p = Math.min(1, this.remainingMs / meanMs / Math.max(1, casesToCome));
    return this.rng.fork(eventId).next() < p;
  }

  /** Books one run's wall time. */
  record(ms: number): void {
    this.spent += ms;
    this.runs++;
  }
}
