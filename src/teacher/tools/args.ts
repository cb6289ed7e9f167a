import type { JsonSchema } from '../llm/port.ts';

/** Argument schemas shared by several tools; the analysts' answer schema is built from the same pieces. */

export const itemIdArg: JsonSchema = { type: 'string', minLength: 1, maxLength: 256, description: 'an item id from the case or an earlier tool response' };

export function itemIdsArg(maxItems: number): JsonSchema {
  return { type: 'array', items: itemIdArg, minItems: 1, maxItems, description: 'item ids from the case or earlier tool responses' };
}

export function limitArg(maxItems: number): JsonSchema {
  return { type: 'integer', minimum: 1, maximum: maxItems, description: `how many entries to list (at most ${maxItems})` };
}

export function objectArgs(properties: Readonly<Record<string, JsonSchema>>, required: readonly string[] = []): JsonSchema {
  return { type: 'object', properties, required, additionalProperties: false };
}

/** The `limit` argument, or the tool's maximum. */
export function limitOf(args: Readonly<Record<string, unknown>>, maxItems: number): number {
  const n = args.limit;
  return typeof n === 'number' ? Math.min(n, maxItems) : maxItems;
}
