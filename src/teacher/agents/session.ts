import { FatalError, StarstreamError, errorMessage } from '../../errors/index.ts';
import type { TeacherCase } from '../../domain/teacher.ts';
import type { ChatMessage, JsonSchema, LanguageModel } from '../llm/port.ts';
import type { TeacherInstruments } from '../instruments.ts';
import { TeacherFailure, type Budget, type Clock } from '../limits.ts';
import type { ToolBox, ToolContext } from '../tools/index.ts';
import { describeIssues, validateJson } from '../tools/json-schema.ts';
import type { TrajectoryRecorder } from '../trajectories/recorder.ts';

/** Everything an agent step needs, for one run. */
export interface RunContext {
  readonly teacherCase: TeacherCase;
  readonly model: LanguageModel;
  readonly budget: Budget;
  readonly clock: Clock;
  readonly recorder: TrajectoryRecorder;
  readonly instruments: TeacherInstruments;
  readonly tools: ToolBox;
  readonly toolContext: ToolContext;
}

/** A check beyond the schema; returns why the answer is refused, or null. `last`: no retry follows. */
export type AnswerCheck<T> = (value: T, last: boolean) => string | null;

export interface Answer<T> {
  readonly value: T;
  /** The raw answer, kept in the agent's conversation. */
  readonly text: string;
}

const MAX_ECHOED_ANSWER = 2_000;

/**
 * One agent answer: a completion, parsed as JSON and validated against `schema` (and `check`). A malformed
 * answer is refused with the reason, shown to the model, and asked again, at most `maxRetries` times; then
 * the run fails with `MALFORMED_ANSWER`. Every call is recorded as an `AgentTurn`, refused ones included.
 *
 * Backend errors: a `TransientError` (after the backend's own retries) fails the run as `LLM_UNAVAILABLE`,
 * a `BadInputError` (e.g. prompt too long) as `LLM_REFUSED`; an abort is the time limit (or the caller's
 * cancellation). A `FatalError` (auth, config) propagates: every case would fail the same way, so the worker
 * stops loudly.
 */
export async function ask<T>(
  rc: RunContext,
  agent: string,
  messages: readonly ChatMessage[],
  schema: JsonSchema,
  schemaName: string,
  check?: AnswerCheck<T>,
): Promise<Answer<T>> {
  const { budget, recorder, instruments, clock } = rc;
  const conversation = [...messages];
  let refusal = '';
  for (let attempt = 0; attempt <= budget.limits.maxRetries; attempt++) {
    const maxTokens = budget.beforeTurn();
    const started = clock.now();
    let completion;
    try {
      completion = await rc.model.complete({
        messages: [...conversation],
        schema,
        schemaName,
        maxTokens,
        signal: budget.signal,
      });
    } catch (err) {
      const seconds = (clock.now() - started) / 1_000;
      const failure = classifyLlmError(err, budget);
      recorder.turn({ agent, attempt, promptTokens: 0, completionTokens: 0, ms: seconds * 1_000, error: `${failure.code}: ${failure.message}` });
      instruments.llmCall(agent, 'error', seconds, 0, 0);
      throw failure;
    }
    const ms = clock.now() - started;
    budget.spendTokens(completion.promptTokens, completion.completionTokens);
    const last = attempt === budget.limits.maxRetries;
    const parsed = parseAnswer<T>(completion.text, schema);
    refusal = 'error' in parsed ? parsed.error : (check?.(parsed.value, last) ?? '');
    recorder.turn({ agent, attempt, promptTokens: completion.promptTokens, completionTokens: completion.completionTokens, ms, error: refusal || null });
    instruments.llmCall(agent, refusal ? 'malformed' : 'ok', ms / 1_000, completion.promptTokens, completion.completionTokens);
    if (!refusal && 'value' in parsed) return { value: parsed.value, text: completion.text };
    conversation.push(
      { role: 'assistant', content: completion.text.slice(0, MAX_ECHOED_ANSWER) },
      { role: 'user', content: `Your answer was refused: ${refusal}. Answer again with exactly one JSON value that matches the schema.` },
    );
  }
  throw new TeacherFailure('MALFORMED_ANSWER', `${agent}: ${refusal} (${budget.limits.maxRetries + 1} attempts)`);
}

function parseAnswer<T>(text: string, schema: JsonSchema): { value: T } | { error: string } {
  let value: unknown;
  try {
    value = JSON.parse(stripFence(text));
  } catch (err) {
    return { error: `not JSON (${errorMessage(err).slice(0, 120)})` };
  }
  const issues = validateJson(schema, value);
  return issues.length ? { error: `does not match the schema: ${describeIssues(issues)}` } : { value: value as T };
}

/**
 * Models without a grammar like to wrap JSON in a Markdown fence; that much is forgiven. Linear on purpose: the
 * regular expression this replaces backtracked cubically on an answer of newlines after an opening fence (a
 * degenerate model's output), blocking the event loop for minutes, where no time limit can fire.
 */
export function stripFence(text: string): string {
  const t = text.trim();
  if (!t.startsWith('```') || !t.endsWith('```')) return text;
  const firstLine = t.indexOf('\n');
  if (firstLine < 0 || !/^(json)?$/.test(t.slice(3, firstLine).trim())) return text;
  const inner = t.slice(firstLine + 1, Math.max(firstLine + 1, t.length - 3));
  const lastLine = inner.lastIndexOf('\n');
  // The closing fence stands on its own line.
  if (lastLine < 0 || inner.slice(lastLine + 1).trim() !== '') return text;
  return inner.slice(0, lastLine);
}

function classifyLlmError(err: unknown, budget: Budget): TeacherFailure | FatalError {
  if (budget.signal.aborted) return budget.abortReason();
  if (err instanceof FatalError) return err;
  if (err instanceof StarstreamError) {
    const code = err.family === 'transient' ? 'LLM_UNAVAILABLE' : 'LLM_REFUSED';
    return new TeacherFailure(code, `${err.code}: ${err.message}`, { cause: err });
  }
  // Unclassified means not retriable (see errors/index.ts).
  return new TeacherFailure('INTERNAL', `unclassified backend error: ${errorMessage(err)}`, { cause: err });
}
