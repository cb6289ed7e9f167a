import type { TeacherCase } from '../../domain/teacher.ts';
import type { CstTemplates } from '../../cst/index.ts';
import type { VectorStore } from '../../store/port.ts';
import type { JsonSchema } from '../llm/port.ts';
import { AsOfReader } from './as-of.ts';
import { candidateEvidenceTool, itemDetailsTool, userHistoryTool } from './catalogue.ts';
import { itemCfTool, userCfTool } from './cf.ts';
import { describeIssues, validateJson } from './json-schema.ts';
import { embeddingNeighboursTool, popularityTool } from './signals.ts';
import { ToolArgsError, type Tool, type ToolContext, type ToolEvidenceOptions, type ToolLimits } from './types.ts';

export { AsOfReader } from './as-of.ts';
export { ToolArgsError, type Tool, type ToolContext, type ToolEvidenceOptions, type ToolLimits } from './types.ts';

/**
 * The teacher's tool box, all served by the CST module over the live store (see `AsOfReader` for what "as
 * of the case" means). The set of tools is fixed here, by code: a model that names another tool gets an
 * error response, never a new capability.
 */
export class ToolBox {
  readonly tools: readonly Tool[];
  private readonly byName: ReadonlyMap<string, Tool>;

  constructor(readonly limits: ToolLimits) {
    this.tools = [
      userHistoryTool(limits),
      itemDetailsTool(limits),
      candidateEvidenceTool(limits),
      itemCfTool(limits),
      userCfTool(limits),
      embeddingNeighboursTool(limits),
      popularityTool(limits),
    ];
    this.byName = new Map(this.tools.map((t) => [t.name, t]));
  }

  get names(): string[] {
    return this.tools.map((t) => t.name);
  }

  /**
   * The `args` schema the analysts answer with: every tool's arguments, all optional, in one flat object,
   * so the answer schema needs no union keyword (not every backend's grammar has one). Each call is then
   * validated against its own tool's schema in `call`.
   */
  /** Every argument name some tool takes. */
  private get unionKeys(): ReadonlySet<string> {
    return new Set(Object.keys((this.argsUnionSchema().properties ?? {}) as Record<string, unknown>));
  }

  argsUnionSchema(): JsonSchema {
    const properties: Record<string, JsonSchema> = {};
    for (const tool of this.tools) {
      for (const [key, schema] of Object.entries((tool.argsSchema.properties ?? {}) as Record<string, JsonSchema>)) {
        properties[key] = withoutNumericBounds(schema);
      }
    }
    return { type: 'object', properties, required: [], additionalProperties: false };
  }

  context(teacherCase: TeacherCase, store: VectorStore, templates: CstTemplates, evidence: ToolEvidenceOptions): ToolContext {
    const candidates = new Set(teacherCase.candidates.map((c) => c.itemId));
    const history = new Set(teacherCase.user.recentItems.map((r) => r.itemId));
    return {
      teacherCase,
      reader: new AsOfReader(store, teacherCase),
      templates,
      evidence,
      limits: this.limits,
      known: new Set([...candidates, ...history]),
      candidates,
      history,
    };
  }

  /**
   * Validates and runs one call. Bad arguments (schema, or an id the run may not name) throw
   * `ToolArgsError`, which the agent sees as an error response; store failures propagate.
   */
  async call(name: string, args: unknown, ctx: ToolContext): Promise<string> {
    const tool = this.byName.get(name);
    if (!tool) throw new ToolArgsError(`there is no tool "${name}"; the tools are ${this.names.join(', ')}`);
    const own = clampNumbers(tool.argsSchema, ownArguments(tool.argsSchema, args, this.unionKeys));
    const issues = validateJson(tool.argsSchema, own);
    if (issues.length) throw new ToolArgsError(`invalid arguments for ${name}: ${describeIssues(issues)}`);
    const record = own as Record<string, unknown>;
    for (const key of tool.idArgs) {
      const value = record[key];
      const ids = typeof value === 'string' ? [value] : Array.isArray(value) ? (value as string[]) : [];
      const unknown = ids.filter((id) => !ctx.known.has(id));
      if (unknown.length) {
        throw new ToolArgsError(`${key}: ${unknown.slice(0, 3).map((id) => JSON.stringify(id)).join(', ')} not in this case or an earlier tool response`);
      }
    }
    const output = await tool.run(record, ctx);
    for (const id of output.surfaced) ctx.known.add(id);
    return output.text;
  }
}

/**
 * The arguments for a tool, from an answer shaped by the union of every tool's arguments: the answer schema
 * lets a model fill properties of other tools (grammar-constrained small models do), which this tool ignores
 * rather than refuses. Anything that is not an object is left for the validator to refuse.
 */
function ownArguments(schema: JsonSchema, args: unknown, anyTool: ReadonlySet<string>): unknown {
  if (typeof args !== 'object' || args === null || Array.isArray(args)) return args;
  const declared = new Set(Object.keys((schema.properties ?? {}) as Record<string, unknown>));
  // Keys no tool takes stay, so the validator still refuses them by name.
  return Object.fromEntries(Object.entries(args).filter(([key]) => declared.has(key) || !anyTool.has(key)));
}

/**
 * An argument's schema without `minimum`/`maximum`, for the answer schema: `call` clamps numbers into the
 * tool's range, so a bound in the answer schema could only turn `limit: 50` into a malformed answer (the
 * 270M model kept asking for more than 10 entries until the case failed). The description still states it.
 */
function withoutNumericBounds(schema: JsonSchema): JsonSchema {
  const { minimum: _min, maximum: _max, ...rest } = schema as Record<string, unknown>;
  return rest as JsonSchema;
}

/**
 * Numbers brought into their declared range (`limit: 50` where at most 10 are listed means "as many as you
 * may"): grammars do not enforce numeric bounds, and refusing such a call wastes a turn on a detail.
 */
function clampNumbers(schema: JsonSchema, args: unknown): unknown {
  if (typeof args !== 'object' || args === null || Array.isArray(args)) return args;
  const properties = (schema.properties ?? {}) as Record<string, { minimum?: unknown; maximum?: unknown }>;
  return Object.fromEntries(
    Object.entries(args).map(([key, value]) => {
      const p = properties[key];
      if (typeof value !== 'number' || !Number.isFinite(value) || !p) return [key, value];
      let v = value;
      if (typeof p.maximum === 'number') v = Math.min(v, p.maximum);
      if (typeof p.minimum === 'number') v = Math.max(v, p.minimum);
      return [key, v];
    }),
  );
}
