import { StarstreamError, errorMessage } from '../../errors/index.ts';
import type { ChatMessage } from '../llm/port.ts';
import { TeacherFailure } from '../limits.ts';
import { ToolArgsError } from '../tools/index.ts';
import { analystSystem, caseText, dataBlock } from './prompts.ts';
import type { Analyst } from './roles.ts';
import { analystSchema, type AnalystAnswer } from './schemas.ts';
import { ask, type RunContext } from './session.ts';

export interface AnalystBrief {
  readonly analyst: Analyst;
  readonly focus: string;
  /** A second pass: the reflector's request and the analyst's previous finding. */
  readonly revisit?: { readonly request: string; readonly previous: string };
}

/**
 * One analyst pass: a loop of tool calls ending in a finding. The first turn must call a tool (while the
 * case has tool calls left), so every finding rests on evidence fetched for it. The loop is bounded by code: on the pass's
 * last turn (`maxAnalystTurns`), or once the case's tool calls are spent, the answer schema only allows
 * `finish`. A tool call with bad arguments (unknown tool or id, schema) gets an error response and the loop
 * goes on; it still spends a tool call.
 */
export async function runAnalyst(rc: RunContext, brief: AnalystBrief): Promise<string> {
  const { budget, recorder, tools, toolContext, clock, instruments } = rc;
  const agent = brief.analyst;
  const task = [
    `The case:\n${dataBlock('case', caseText(rc.teacherCase, { historyItems: 10, evidence: false }))}`,
    `The planner's focus for you:\n${dataBlock('plan', brief.focus)}`,
  ];
  if (brief.revisit) {
    task.push(`Your previous finding:\n${dataBlock('finding', brief.revisit.previous)}`);
    task.push(`The reflector asks you to revisit it:\n${dataBlock('reflection', brief.revisit.request)}`);
  }
  task.push('Call a tool or give your finding.');
  const messages: ChatMessage[] = [
    { role: 'system', content: analystSystem(agent, tools.tools) },
    { role: 'user', content: task.join('\n') },
  ];
  const argsSchema = tools.argsUnionSchema();
  for (let turn = 1; ; turn++) {
    const mustFinish = turn >= budget.limits.maxAnalystTurns || budget.toolCallsLeft === 0;
    if (mustFinish && turn > 1) messages.push({ role: 'user', content: 'No more tool calls are available: give your finding now.' });
    const schema = analystSchema(tools.names, argsSchema, mustFinish ? 'finish' : turn === 1 ? 'call' : 'either');
    const { value, text } = await ask<AnalystAnswer>(rc, agent, messages, schema, 'mars_analyst_step', checkStep);
    messages.push({ role: 'assistant', content: text });
    if (value.action === 'finish') {
      recorder.step({ kind: 'finding', agent, text: value.finding });
      return value.finding;
    }
    recorder.step({ kind: 'tool_call', agent, tool: value.tool, args: value.args });
    budget.toolCalls += 1;
    budget.checkTime();
    const started = clock.now();
    let output: string;
    let error = false;
    try {
      output = await tools.call(value.tool, value.args, toolContext);
    } catch (err) {
      if (!(err instanceof ToolArgsError)) throw classifyToolError(err);
      output = `error: ${err.message}`;
      error = true;
    }
    const ms = clock.now() - started;
    recorder.step({ kind: 'tool_response', agent, tool: value.tool, text: output, error, ms });
    instruments.toolCall(value.tool, error ? 'error' : 'ok', ms / 1_000);
    messages.push({ role: 'user', content: `Response of ${value.tool}:\n${dataBlock(`tool:${value.tool}`, output)}\nCall another tool or give your finding.` });
  }
}

/** What the schema cannot say: a tool call names a tool, a finish has a finding. */
function checkStep(value: AnalystAnswer): string | null {
  if (value.action === 'call_tool' && value.tool === 'none') return 'action "call_tool" needs a tool name';
  if (value.action === 'finish' && value.finding.trim() === '') return 'action "finish" needs a non-empty finding';
  return null;
}

/** Store errors during a tool call: transient ones fail the run as retriable, the rest propagate. */
function classifyToolError(err: unknown): unknown {
  if (err instanceof StarstreamError && err.family === 'transient') {
    return new TeacherFailure('STORE_UNAVAILABLE', `${err.code}: ${errorMessage(err)}`, { cause: err });
  }
  return err;
}
