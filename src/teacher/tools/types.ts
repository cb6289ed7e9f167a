import type { TeacherCase } from '../../domain/teacher.ts';
import type { EvidenceOptions } from '../../stages/evidence/index.ts';
import type { CstTemplates } from '../../cst/index.ts';
import type { JsonSchema } from '../llm/port.ts';
import type { AsOfReader } from './as-of.ts';

/**
 * What every teacher tool is: a name, a description the agents read, a JSON Schema for its arguments
 * (validated before the tool runs), which of its arguments name items (checked against the ids the run may
 * name), and a function that reads the store through the case's as-of view and renders plain text.
 */

export interface ToolLimits {
  /** Most list entries (items, users) one tool response names. */
  readonly maxItems: number;
  /** A response longer than this is cut (with a marker saying so). */
  readonly maxOutputChars: number;
}

export type ToolEvidenceOptions = Pick<
  EvidenceOptions,
  'neighbours' | 'cooccurrenceWindow' | 'popularityShortHalfLifeMs' | 'popularityLongHalfLifeMs'
>;

export interface ToolContext {
  readonly teacherCase: TeacherCase;
  readonly reader: AsOfReader;
  readonly templates: CstTemplates;
  readonly evidence: ToolEvidenceOptions;
  readonly limits: ToolLimits;
  /** Ids an agent may name: the case's candidates and history, then whatever tools surfaced in this run. */
  readonly known: Set<string>;
  /** The case's candidate ids, in the serving order. */
  readonly candidates: ReadonlySet<string>;
  /** The user's history at the case's time. */
  readonly history: ReadonlySet<string>;
}

export interface ToolOutput {
  /** Plain text lines; the caller wraps them as untrusted data. */
  readonly text: string;
  /** Item ids this response named, added to `known` so later calls may ask about them. */
  readonly surfaced: readonly string[];
}

export interface Tool {
  readonly name: string;
  readonly description: string;
  readonly argsSchema: JsonSchema;
  /** Arguments holding one item id (`string`) or several (`string[]`). */
  readonly idArgs: readonly string[];
  run(args: Readonly<Record<string, unknown>>, ctx: ToolContext): Promise<ToolOutput>;
}

/** Arguments that fail the schema or name an id the run may not name; the agent is told, the run goes on. */
export class ToolArgsError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'ToolArgsError';
  }
}
