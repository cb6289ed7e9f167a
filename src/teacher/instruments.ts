/**
 * What the teacher reports about itself, as plain hooks (no prom-client here): `ops/teacher-metrics.ts` maps
 * them onto the metric catalog, tests record them. Labels are bounded: agent and tool names are fixed by the
 * code, failure codes are `FAILURE_CODES`.
 */
export interface TeacherInstruments {
  caseReceived(): void;
  /** One case done (a trajectory was produced), with its wall time. */
  caseFinished(status: 'completed' | 'failed', seconds: number): void;
  /** Time one agent spent on one case: its LLM calls and its tool calls. */
  agentDuration(agent: string, seconds: number): void;
  /** One LLM call; `outcome` is `ok`, `malformed` (refused and retried or failed) or `error` (the backend failed). */
  llmCall(agent: string, outcome: 'ok' | 'malformed' | 'error', seconds: number, promptTokens: number, completionTokens: number): void;
  toolCall(tool: string, outcome: 'ok' | 'error', seconds: number): void;
  failure(code: string): void;
  /** Cases not yet finished: the group's lag on the teacher-cases topic (the batch in flight included). */
  backlog(cases: number): void;
  /** A teacher-cases record that could not be decoded went to the DLQ. */
  deadLettered(code: string): void;
}

export const NO_TEACHER_INSTRUMENTS: TeacherInstruments = {
  caseReceived: () => {},
  caseFinished: () => {},
  agentDuration: () => {},
  llmCall: () => {},
  toolCall: () => {},
  failure: () => {},
  backlog: () => {},
  deadLettered: () => {},
};
