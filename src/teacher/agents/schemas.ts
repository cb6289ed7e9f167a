import type { JsonSchema } from '../llm/port.ts';
import { ANALYSTS } from './roles.ts';

/**
 * The answer schema of every agent. Each is sent to the language model (a backend may enforce it with a
 * grammar or `response_format`) and the very same object validates the answer (`tools/json-schema.ts`).
 * Only object / array / string / integer / enum: no union keyword, which not every backend supports.
 * Every property is required and no others are allowed, so an answer has one shape.
 */

const text = (maxLength: number, description: string): JsonSchema => ({ type: 'string', maxLength, description });

function object(properties: Readonly<Record<string, JsonSchema>>): JsonSchema {
  return { type: 'object', properties, required: Object.keys(properties), additionalProperties: false };
}

const analystEnum: JsonSchema = { type: 'string', enum: [...ANALYSTS] };

/**
 * Character bounds of the agents' free text. Each answer's bounds together stay well inside the completion
 * budget (`teacher.limits.maxCompletionTokens`, 768) even at ~1.3 characters per token, the density of the
 * repetitive text a small model drifts into: with a finding of up to 1,200 characters the 270M model's answers
 * were cut at ~984 characters, mid-string, and 6 of 16 real ml-100k cases failed as unterminated JSON. The
 * grammar enforces these lengths, so an answer now closes its strings before the token limit.
 */
export const TEXT_BOUNDS = {
  plan: 300,
  focus: 100,
  finding: 600,
  assessment: 250,
  issue: 80,
  issues: 3,
  request: 60,
  justification: 400,
} as const;

export const plannerSchema: JsonSchema = object({
  plan: text(TEXT_BOUNDS.plan, 'what matters for this user and how the work is split'),
  tasks: {
    type: 'array',
    minItems: 1,
    maxItems: ANALYSTS.length,
    items: object({ analyst: analystEnum, focus: text(TEXT_BOUNDS.focus, 'what this analyst should look at') }),
  },
});

export interface PlannerAnswer {
  plan: string;
  tasks: { analyst: (typeof ANALYSTS)[number]; focus: string }[];
}

/**
 * One analyst step. `mustFinish` (the analyst's last turn, or the case's tool calls are spent) narrows
 * `action` to `finish`: the code, not the model, ends the tool loop.
 */
/**
 * `call`: the pass's first turn, which must call a tool (findings rest on evidence fetched for this case,
 * not on the case text alone); `finish`: the last turn; `either` in between.
 */
export type AnalystTurn = 'call' | 'either' | 'finish';

export function analystSchema(toolNames: readonly string[], argsSchema: JsonSchema, turn: AnalystTurn): JsonSchema {
  const actions = { call: ['call_tool'], either: ['call_tool', 'finish'], finish: ['finish'] }[turn];
  const tools = { call: [...toolNames], either: [...toolNames, 'none'], finish: ['none'] }[turn];
  return object({
    action: { type: 'string', enum: actions },
    tool: { type: 'string', enum: tools },
    args: argsSchema,
    // Lengths by turn: a small model given a free choice tends to finish with an empty finding.
    finding:
      turn === 'call'
        ? { type: 'string', maxLength: 0, description: 'empty: this turn calls a tool' }
        : turn === 'finish'
          ? { ...text(TEXT_BOUNDS.finding, 'your finding: what the evidence says about this user and the candidates'), minLength: 10 }
          : text(TEXT_BOUNDS.finding, 'empty when calling a tool; the finding when finishing'),
  });
}

export interface AnalystAnswer {
  action: 'call_tool' | 'finish';
  tool: string;
  args: Record<string, unknown>;
  finding: string;
}

/** `final`: the last reflection round, in which nobody can be sent back any more. */
export function reflectorSchema(final: boolean): JsonSchema {
  return object({
    assessment: text(TEXT_BOUNDS.assessment, 'how consistent and complete the findings are'),
    issues: { type: 'array', maxItems: TEXT_BOUNDS.issues, items: text(TEXT_BOUNDS.issue, 'one contradiction or gap') },
    sendBack: {
      type: 'array',
      maxItems: final ? 0 : ANALYSTS.length,
      items: object({ analyst: analystEnum, request: text(TEXT_BOUNDS.request, 'what to check or add') }),
    },
  });
}

export interface ReflectorAnswer {
  assessment: string;
  issues: string[];
  sendBack: { analyst: (typeof ANALYSTS)[number]; request: string }[];
}

/** The final ordering: every candidate id exactly once (the count is in the schema; uniqueness is checked). */
export function rankerSchema(candidateIds: readonly string[]): JsonSchema {
  // The ranking first: grammar-constrained decoding writes properties in this order, and an answer cut at the
  // token limit inside a long justification would otherwise lose the ranking itself.
  return object({
    ranking: {
      type: 'array',
      minItems: candidateIds.length,
      maxItems: candidateIds.length,
      items: { type: 'string', enum: [...candidateIds] },
    },
    justification: text(TEXT_BOUNDS.justification, 'why the top candidates come first, in a few sentences'),
  });
}

export interface RankerAnswer {
  justification: string;
  ranking: string[];
}
