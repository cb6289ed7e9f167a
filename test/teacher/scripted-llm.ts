/**
 * A scripted `LanguageModel` double for the protocol tests: it answers each request by asking a script
 * which agent is speaking (from the schema name and the system prompt) and records every request.
 */
import { ANALYSTS, ANALYST_BRIEFS, type AgentName } from '../../src/teacher/agents/roles.ts';
import type { Completion, CompletionRequest, LanguageModel } from '../../src/teacher/llm/port.ts';

export interface ScriptedCall {
  readonly agent: AgentName;
  /** 0-based count of earlier calls by this agent in the run. */
  readonly n: number;
  readonly request: CompletionRequest;
}

/** Returns the answer text, or a full completion (token counts), or throws like a backend. */
export type Script = (call: ScriptedCall) => string | Completion | Promise<string | Completion>;

export class ScriptedModel implements LanguageModel {
  readonly backend = 'scripted';
  readonly model = 'script-1';
  readonly calls: ScriptedCall[] = [];
  private readonly counts = new Map<AgentName, number>();
  closed = false;

  constructor(private readonly script: Script) {}

  async complete(request: CompletionRequest): Promise<Completion> {
    const agent = agentOf(request);
    const n = this.counts.get(agent) ?? 0;
    this.counts.set(agent, n + 1);
    const call = { agent, n, request };
    this.calls.push(call);
    const answer = await this.script(call);
    if (typeof answer !== 'string') return answer;
    const promptTokens = Math.ceil(request.messages.reduce((s, m) => s + m.content.length, 0) / 4);
    return { text: answer, promptTokens, completionTokens: Math.ceil(answer.length / 4), ms: 1 };
  }

  close(): Promise<void> {
    this.closed = true;
    return Promise.resolve();
  }

  agents(): AgentName[] {
    return this.calls.map((c) => c.agent);
  }
}

export function agentOf(request: CompletionRequest): AgentName {
  if (request.schemaName === 'mars_plan') return 'planner';
  if (request.schemaName === 'mars_reflection') return 'reflector';
  if (request.schemaName === 'mars_ranking') return 'ranker';
  const system = request.messages[0]?.content ?? '';
  const analyst = ANALYSTS.find((a) => system.includes(`You are the ${ANALYST_BRIEFS[a].title}.`));
  if (!analyst) throw new Error(`scripted model: cannot tell the agent of ${request.schemaName}`);
  return analyst;
}

/** Candidate ids from the ranker's schema, in the case's order. */
export function candidateIdsOf(request: CompletionRequest): string[] {
  const ranking = (request.schema.properties as Record<string, { items: { enum: string[] } }>).ranking;
  return [...ranking!.items.enum];
}

export const json = (value: unknown): string => JSON.stringify(value);

export const finish = (finding: string): string => json({ action: 'finish', tool: 'none', args: {}, finding });
export const callTool = (tool: string, args: Record<string, unknown>): string => json({ action: 'call_tool', tool, args, finding: '' });

/**
 * A well-behaved team: the planner briefs all four analysts; each analyst calls one tool (its own pick),
 * then finishes (after any tool response); the reflector accepts; the ranker returns the candidates reversed.
 */
export function politeScript(toolFor: (agent: AgentName) => [string, Record<string, unknown>]): Script {
  return ({ agent, request }) => {
    switch (agent) {
      case 'planner':
        return json({ plan: 'look at everything', tasks: ANALYSTS.map((a) => ({ analyst: a, focus: `${a} focus` })) });
      case 'reflector':
        return json({ assessment: 'consistent', issues: [], sendBack: [] });
      case 'ranker':
        return json({ justification: 'reverse order', ranking: candidateIdsOf(request).reverse() });
      default: {
        const last = request.messages.at(-1)?.content ?? '';
        if (last.startsWith('Response of')) return finish(`${agent} finding`);
        const [tool, args] = toolFor(agent);
        return callTool(tool, args);
      }
    }
  };
}
