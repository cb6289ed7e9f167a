/**
 * Per-case limits of a teacher run (config `teacher.limits`; the defaults below mirror the schema's) and the budget that enforces them. Every LLM call (retries included)
 * spends a turn and its tokens; every tool call spends a tool call; the wall-time limit is a deadline on the
 * injected clock and an `AbortSignal` handed to the language model, so a call in flight is cut too.
 */

export interface TeacherLimits {
  /** LLM calls per case, retries of malformed answers included. */
  readonly maxTurns: number;
  /** Turns one analyst may take in one pass (tool calls + its finding); the last one must be the finding. */
  readonly maxAnalystTurns: number;
  /** Tool calls per case; once spent, analysts may only finish. */
  readonly maxToolCalls: number;
  /** Prompt + completion tokens per case. */
  readonly maxTokens: number;
  /** Completion tokens per LLM call. */
  readonly maxCompletionTokens: number;
  /** Wall time per case, ms. */
  readonly maxWallMs: number;
  /** Retries of a malformed answer, per agent step, before the case fails. */
  readonly maxRetries: number;
  /** Times the reflector may send analysts back. */
  readonly maxReflectionRounds: number;
  /** Most entries one tool response lists. */
  readonly maxToolItems: number;
  /** Most characters of one tool response. */
  readonly maxToolOutputChars: number;
}

export const DEFAULT_TEACHER_LIMITS: TeacherLimits = {
  maxTurns: 40,
  maxAnalystTurns: 4,
  maxToolCalls: 16,
  maxTokens: 120_000,
  maxCompletionTokens: 768,
  maxWallMs: 300_000,
  maxRetries: 2,
  maxReflectionRounds: 1,
  maxToolItems: 10,
  maxToolOutputChars: 2_000,
};

/** Why a run stopped early: stable codes, used as the `code` label of the failures metric. */
export const FAILURE_CODES = [
  'INVALID_CASE',
  'MALFORMED_ANSWER',
  'TURN_LIMIT',
  'TOKEN_LIMIT',
  'TIME_LIMIT',
  'CANCELLED',
  'LLM_UNAVAILABLE',
  'LLM_REFUSED',
  'STORE_UNAVAILABLE',
  'INTERNAL',
] as const;
export type FailureCode = (typeof FAILURE_CODES)[number];

/** Failures another try may not repeat (the backend or the store was away, the run was cut short by a stop). */
export const RETRIABLE_FAILURES: ReadonlySet<FailureCode> = new Set(['LLM_UNAVAILABLE', 'STORE_UNAVAILABLE', 'CANCELLED']);

/** The code of a failed trajectory's `failure` (`CODE: message`). */
export function failureCodeOf(failure: string | null): FailureCode | null {
  if (failure === null) return null;
  const code = failure.slice(0, failure.indexOf(':'));
  return (FAILURE_CODES as readonly string[]).includes(code) ? (code as FailureCode) : 'INTERNAL';
}

/** A run that cannot go on. Caught by `runTeacher`, which records it in the trajectory. */
export class TeacherFailure extends Error {
  constructor(
    readonly code: FailureCode,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
    this.name = 'TeacherFailure';
  }
}

export interface Clock {
  now(): number;
}

export const SYSTEM_CLOCK: Clock = { now: () => Date.now() };

export class Budget {
  turns = 0;
  toolCalls = 0;
  tokens = 0;
  readonly deadlineMs: number;
  readonly signal: AbortSignal;
  private readonly timeout: AbortController;
  private readonly timer: NodeJS.Timeout;

  constructor(
    readonly limits: TeacherLimits,
    private readonly clock: Clock,
    external?: AbortSignal,
  ) {
    this.deadlineMs = clock.now() + limits.maxWallMs;
    this.timeout = new AbortController();
    this.timer = setTimeout(() => this.timeout.abort(new TeacherFailure('TIME_LIMIT', `over ${limits.maxWallMs} ms`)), limits.maxWallMs);
    this.signal = external ? AbortSignal.any([this.timeout.signal, external]) : this.timeout.signal;
  }

  /** Throws when the case may not make another LLM call; returns the completion tokens it may use. */
  beforeTurn(): number {
    this.checkTime();
    if (this.turns >= this.limits.maxTurns) throw new TeacherFailure('TURN_LIMIT', `${this.limits.maxTurns} turns used`);
    const left = this.limits.maxTokens - this.tokens;
    if (left <= 0) throw new TeacherFailure('TOKEN_LIMIT', `${this.tokens} of ${this.limits.maxTokens} tokens used`);
    this.turns += 1;
    return Math.min(this.limits.maxCompletionTokens, left);
  }

  spendTokens(prompt: number, completion: number): void {
    this.tokens += prompt + completion;
  }

  get toolCallsLeft(): number {
    return Math.max(0, this.limits.maxToolCalls - this.toolCalls);
  }

  /** Throws the time limit (or the caller's cancellation) once the deadline has passed. */
  checkTime(): void {
    if (this.signal.aborted) throw this.abortReason();
    if (this.clock.now() >= this.deadlineMs) throw new TeacherFailure('TIME_LIMIT', `over ${this.limits.maxWallMs} ms`);
  }

  /** The failure an aborted signal stands for: our deadline, else the caller cancelled the run. */
  abortReason(): TeacherFailure {
    const reason: unknown = this.signal.reason;
    if (reason instanceof TeacherFailure) return reason;
    return new TeacherFailure('CANCELLED', 'the run was cancelled', { cause: reason });
  }

  dispose(): void {
    clearTimeout(this.timer);
  }
}
