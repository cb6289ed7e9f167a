import { FatalError, errorMessage } from '../errors/index.ts';
import type { TeacherCase, Trajectory } from '../domain/teacher.ts';
import type { CstTemplates } from '../cst/index.ts';
import type { VectorStore } from '../store/port.ts';
import { runAnalyst } from './agents/analyst.ts';
import { runPlanner } from './agents/planner.ts';
import { runRanker } from './agents/ranker.ts';
import { runReflector } from './agents/reflector.ts';
import type { Analyst } from './agents/roles.ts';
import type { RunContext } from './agents/session.ts';
import { NO_TEACHER_INSTRUMENTS, type TeacherInstruments } from './instruments.ts';
import type { LanguageModel } from './llm/port.ts';
import { Budget, SYSTEM_CLOCK, TeacherFailure, failureCodeOf, type Clock, type TeacherLimits } from './limits.ts';
import { ToolBox, type ToolEvidenceOptions } from './tools/index.ts';
import { TrajectoryRecorder } from './trajectories/recorder.ts';

export interface TeacherDeps {
  readonly model: LanguageModel;
  readonly store: VectorStore;
  readonly limits: TeacherLimits;
  readonly templates: CstTemplates;
  readonly evidence: ToolEvidenceOptions;
  readonly clock?: Clock;
  readonly instruments?: TeacherInstruments;
  /** Cancels the run (worker shutdown past its deadline); the run fails as `CANCELLED`. */
  readonly signal?: AbortSignal;
}

/**
 * One MARS run over one case. The protocol is code:
 *
 * 1. planner: a plan and the analysts to brief (any of profile, long_term, recent, divergence);
 * 2. each briefed analyst, in that fixed order, calls tools and ends with a finding;
 * 3. reflector: checks the findings; may send analysts back (with a request) for up to
 *    `maxReflectionRounds` rounds, after each of which it reviews again; in the last review it cannot;
 * 4. ranker: the final permutation of the candidates with a justification.
 *
 * Never throws for a case-level problem: limits, malformed answers, backend and store failures end in a
 * `failed` trajectory with `CODE: message` (everything recorded so far kept). Only a `FatalError` (backend
 * auth or configuration) propagates, so the worker stops loudly instead of failing every case alike.
 */
export async function runTeacher(teacherCase: TeacherCase, deps: TeacherDeps): Promise<Trajectory> {
  const clock = deps.clock ?? SYSTEM_CLOCK;
  const instruments = deps.instruments ?? NO_TEACHER_INSTRUMENTS;
  const recorder = new TrajectoryRecorder(teacherCase.caseId, deps.model.backend, deps.model.model, clock.now());
  const budget = new Budget(deps.limits, clock, deps.signal);
  const tools = new ToolBox({ maxItems: deps.limits.maxToolItems, maxOutputChars: deps.limits.maxToolOutputChars });
  let trajectory: Trajectory;
  try {
    checkCase(teacherCase);
    const rc: RunContext = {
      teacherCase,
      model: deps.model,
      budget,
      clock,
      recorder,
      instruments,
      tools,
      toolContext: tools.context(teacherCase, deps.store, deps.templates, deps.evidence),
    };
    const { ranking } = await protocol(rc);
    trajectory = recorder.finish(clock.now(), { status: 'completed', ranking });
  } catch (err) {
    if (err instanceof FatalError) throw err;
    const failure = err instanceof TeacherFailure ? err : new TeacherFailure('INTERNAL', errorMessage(err), { cause: err });
    trajectory = recorder.finish(clock.now(), { status: 'failed', failure: `${failure.code}: ${failure.message}` });
  } finally {
    budget.dispose();
  }
  for (const [agent, ms] of recorder.agentMs) instruments.agentDuration(agent, ms / 1_000);
  const code = failureCodeOf(trajectory.failure);
  if (code) instruments.failure(code);
  instruments.caseFinished(trajectory.status, trajectory.ms / 1_000);
  return trajectory;
}

async function protocol(rc: RunContext): Promise<{ ranking: string[] }> {
  const tasks = await runPlanner(rc);
  const findings = new Map<Analyst, string>();
  for (const task of tasks) findings.set(task.analyst, await runAnalyst(rc, task));
  for (let round = 0; ; round++) {
    const final = round >= rc.budget.limits.maxReflectionRounds;
    const sendBack = await runReflector(rc, findings, final);
    if (final || sendBack.length === 0) break;
    for (const s of sendBack) {
      const previous = findings.get(s.analyst) ?? '(this analyst was not briefed before)';
      findings.set(s.analyst, await runAnalyst(rc, { analyst: s.analyst, focus: s.request, revisit: { request: s.request, previous } }));
    }
  }
  return runRanker(rc, findings);
}

function checkCase(c: TeacherCase): void {
  const ids = c.candidates.map((x) => x.itemId);
  if (ids.length === 0) throw new TeacherFailure('INVALID_CASE', 'the case has no candidates');
  if (new Set(ids).size !== ids.length) throw new TeacherFailure('INVALID_CASE', 'the case repeats candidate ids');
  if (ids.some((id) => typeof id !== 'string' || id.length === 0)) throw new TeacherFailure('INVALID_CASE', 'a candidate id is empty');
}
