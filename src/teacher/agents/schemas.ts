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

export const plannerSchema: JsonSchema = object({
  plan: text(800, 'what matters for this user and how the work is split'),
  tasks: {
    type: 'array',
    minItems: 1,
    maxItems: ANALYSTS.length,
    items: object({ analyst: analystEnum, focus: text(300, 'what this analyst should look at') }),
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
          ? { ...text(1_200, 'your finding: what the evidence says about this user and the candidates'), minLength: 10 }
          : text(1_200, 'empty when calling a tool; the finding when finishing'),
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
    assessment: text(800, 'how consistent and complete the findings are'),
    issues: { type: 'array', maxItems: 5, items: text(300, 'one contradiction or gap') },
    sendBack: {
      type: 'array',
      maxItems: final ? 0 : ANALYSTS.length,
      items: object({ analyst: analystEnum, request: text(300, 'what to check or add') }),
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
    justification: text(400, 'why the top candidates come first, in a few sentences'),
  });
}

export interface RankerAnswer {
  justification: string;
  ranking: string[];
}
