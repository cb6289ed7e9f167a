import { Ajv, type ErrorObject, type ValidateFunction } from 'ajv';
import type { JsonSchema } from '../llm/port.ts';

/**
 * JSON Schema validation of what the language model answers and of tool arguments, through ajv: the same
 * schema object is sent to the backend (which may or may not enforce it) and checked here, so what the agents
 * accept is exactly what they asked for. The teacher's schemas use a small subset (`llm/port.ts`); ajv's
 * errors are turned into short issues whose wording the model reads back (`/itemId: is required`).
 * Compiled validators are cached per schema object.
 */

export interface SchemaIssue {
  /** JSON-pointer-like path, `` for the root, `/args/itemIds/0` inside. */
  readonly path: string;
  readonly message: string;
}

const MAX_ISSUES = 5;

/** `strict: false`: keywords ajv does not know (none today) are ignored, as the model's backends ignore them. */
const ajv = new Ajv({ allErrors: true, strict: false });
const compiled = new WeakMap<JsonSchema, ValidateFunction>();

export function validateJson(schema: JsonSchema, value: unknown): SchemaIssue[] {
  let validate = compiled.get(schema);
  if (!validate) {
    validate = ajv.compile(schema);
    // ajv keeps every compiled schema in a Map keyed by the object; the teacher builds schemas per case (the
    // ranker's enum of candidate ids), so that Map would grow for the life of the worker. The WeakMap above
    // keeps the validator exactly as long as the schema lives.
    ajv.removeSchema(schema);
    compiled.set(schema, validate);
  }
  if (validate(value)) return [];
  return issuesOf(validate.errors ?? []);
}

/** `path: message; …`, bounded: the text that goes back to the model and into the trajectory. */
export function describeIssues(issues: readonly SchemaIssue[]): string {
  const text = issues.map((i) => `${i.path || '(root)'}: ${i.message}`).join('; ');
  return text.length > MAX_DESCRIPTION ? `${text.slice(0, MAX_DESCRIPTION)}…` : text;
}

const MAX_DESCRIPTION = 1_000;
const MAX_KEY_IN_PATH = 40;

/** A key of the checked value as it appears in a path: the model chooses keys, so they are cut. */
function keyInPath(key: string): string {
  return key.length > MAX_KEY_IN_PATH ? `${key.slice(0, MAX_KEY_IN_PATH)}…` : key;
}

/** ajv's errors as issues: one per place (the first error there), at most MAX_ISSUES. */
function issuesOf(errors: readonly ErrorObject[]): SchemaIssue[] {
  const issues: SchemaIssue[] = [];
  const seen = new Set<string>();
  for (const e of errors) {
    const issue = toIssue(e);
    if (!issue || seen.has(issue.path)) continue;
    seen.add(issue.path);
    issues.push(issue);
    if (issues.length >= MAX_ISSUES) break;
  }
  return issues;
}

function toIssue(e: ErrorObject): SchemaIssue | null {
  const path = e.instancePath.split('/').map((part, i) => (i === 0 ? part : keyInPath(part.replace(/~1/g, '/').replace(/~0/g, '~')))).join('/');
  const p = e.params as Record<string, unknown>;
  switch (e.keyword) {
    case 'required':
      return { path: `${path}/${keyInPath(String(p.missingProperty))}`, message: 'is required' };
    case 'additionalProperties':
      return { path: `${path}/${keyInPath(String(p.additionalProperty))}`, message: 'is not allowed' };
    case 'type': {
      const type = String(p.type);
      return { path, message: `must be ${/^[aeiou]/.test(type) ? 'an' : 'a'} ${type}` };
    }
    case 'enum':
      return { path, message: `must be one of ${preview(p.allowedValues as unknown[])}` };
    case 'const':
      return { path, message: `must be ${JSON.stringify(p.allowedValue)}` };
    case 'minItems':
      return { path, message: `must have at least ${String(p.limit)} items` };
    case 'maxItems':
      return { path, message: `must have at most ${String(p.limit)} items` };
    case 'minLength':
      return { path, message: `must have at least ${String(p.limit)} characters` };
    case 'maxLength':
      return { path, message: `must have at most ${String(p.limit)} characters` };
    case 'minimum':
    case 'maximum':
      return { path, message: `must be ${String(p.comparison)} ${String(p.limit)}` };
    default:
      return { path, message: e.message ?? `fails ${e.keyword}` };
  }
}

function preview(values: readonly unknown[]): string {
  const shown = values.slice(0, 8).map((v) => JSON.stringify(v)).join(', ');
  return values.length > 8 ? `${shown}, … (${values.length})` : shown;
}
