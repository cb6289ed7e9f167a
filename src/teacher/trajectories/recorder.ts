import type { AgentTurn, Trajectory, TrajectoryStep } from '../../domain/teacher.ts';
import { serializeSteps } from './serialize.ts';

/**
 * Collects one run as it happens: the steps in order and every LLM call's accounting, then builds the
 * `Trajectory` (with its serialized form) whether the run completed or failed, so failed runs stay available
 * for analysis.
 */
export class TrajectoryRecorder {
  private readonly steps: TrajectoryStep[] = [];
  private readonly turns: AgentTurn[] = [];
  /** Milliseconds per agent: its LLM calls and its tool calls. */
  readonly agentMs = new Map<string, number>();

  constructor(
    readonly caseId: string,
    readonly backend: string,
    readonly model: string,
    readonly startedAtMs: number,
  ) {}

  step(step: TrajectoryStep): void {
    this.steps.push(step);
    if (step.kind === 'tool_response' && step.ms !== undefined) this.addMs(step.agent, step.ms);
  }

  turn(turn: AgentTurn): void {
    this.turns.push(turn);
    this.addMs(turn.agent, turn.ms);
  }

  get turnCount(): number {
    return this.turns.length;
  }

  get stepsSoFar(): readonly TrajectoryStep[] {
    return this.steps;
  }

  finish(
    endedAtMs: number,
    result: { status: 'completed'; ranking: readonly string[] } | { status: 'failed'; failure: string },
  ): Trajectory {
    return {
      caseId: this.caseId,
      backend: this.backend,
      model: this.model,
      startedAtMs: this.startedAtMs,
      ms: Math.max(0, endedAtMs - this.startedAtMs),
      steps: [...this.steps],
      turns: [...this.turns],
      ranking: result.status === 'completed' ? [...result.ranking] : [],
      status: result.status,
      failure: result.status === 'failed' ? result.failure : null,
      serialized: serializeSteps(this.steps),
    };
  }

  private addMs(agent: string, ms: number): void {
    this.agentMs.set(agent, (this.agentMs.get(agent) ?? 0) + ms);
  }
}
