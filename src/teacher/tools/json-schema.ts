import type { JsonSchema } from '../llm/port.ts';

/**
 * A small JSON Schema validator for the subset the teacher sends to its language model (see `JsonSchema` in
 * `llm/port.ts`): `type` object / array / string / number / integer / boolean, `properties`, `required`,
 * `additionalProperties: false`, `items`, `minItems`/`maxItems`, `minLength`/`maxLength`, `minimum`/`maximum`,
 * `enum`, `const`. The same schema object is sent to the backend (which may or may not enforce it) and checked
 * here, so what the agents accept is exactly what they asked for. Unknown keywords are ignored (`description`).
 */

export interface SchemaIssue {
  /** JSON-pointer-like path, `` for the root, `/args/itemIds/0` inside. */
  readonly path: string;
  readonly message: string;
}

const MAX_ISSUES = 5;

export function validateJson(schema: JsonSchema, value: unknown): SchemaIssue[] {
  const issues: SchemaIssue[] = [];
  check(schema, value, '', issues);
  return issues;
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

function check(schema: JsonSchema, value: unknown, path: string, issues: SchemaIssue[]): void {
  if (issues.length >= MAX_ISSUES) return;
  const add = (message: string): void => void issues.push({ path, message });
  if ('const' in schema && !sameValue(schema.const, value)) return add(`must be ${JSON.stringify(schema.const)}`);
  const allowed = schema.enum as readonly unknown[] | undefined;
  if (allowed && !allowed.some((a) => sameValue(a, value))) return add(`must be one of ${preview(allowed)}`);
  switch (schema.type) {
    case undefined:
      return;
    case 'object':
      return checkObject(schema, value, path, issues);
    case 'array': {
      if (!Array.isArray(value)) return add('must be an array');
      const min = schema.minItems as number | undefined;
      const max = schema.maxItems as number | undefined;
      if (min !== undefined && value.length < min) add(`must have at least ${min} items`);
      if (max !== undefined && value.length > max) add(`must have at most ${max} items`);
      const items = schema.items as JsonSchema | undefined;
      if (items) value.forEach((v, i) => check(items, v, `${path}/${i}`, issues));
      return;
    }
    case 'string': {
      if (typeof value !== 'string') return add('must be a string');
      const min = schema.minLength as number | undefined;
      const max = schema.maxLength as number | undefined;
      if (min !== undefined && value.length < min) add(`must have at least ${min} characters`);
      if (max !== undefined && value.length > max) add(`must have at most ${max} characters`);
      return;
    }
    case 'number':
    case 'integer': {
      if (typeof value !== 'number' || !Number.isFinite(value)) return add(`must be a ${schema.type}`);
      if (schema.type === 'integer' && !Number.isInteger(value)) return add('must be an integer');
      const min = schema.minimum as number | undefined;
      const max = schema.maximum as number | undefined;
      if (min !== undefined && value < min) add(`must be >= ${min}`);
      if (max !== undefined && value > max) add(`must be <= ${max}`);
      return;
    }
    case 'boolean':
      if (typeof value !== 'boolean') add('must be a boolean');
      return;
    default:
      throw new Error(`json-schema: unsupported type ${JSON.stringify(schema.type)} at ${path || '(root)'}`);
  }
}

function checkObject(schema: JsonSchema, value: unknown, path: string, issues: SchemaIssue[]): void {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    issues.push({ path, message: 'must be an object' });
    return;
  }
  const record = value as Record<string, unknown>;
  const properties = (schema.properties ?? {}) as Readonly<Record<string, JsonSchema>>;
  for (const key of (schema.required ?? []) as readonly string[]) {
    if (!Object.hasOwn(record, key)) issues.push({ path: `${path}/${key}`, message: 'is required' });
  }
  for (const [key, v] of Object.entries(record)) {
    // Own properties only: `properties.constructor` (or `toString`, `__proto__`) is Object.prototype's, and
    // was taken for a schema that allows anything, so such keys passed `additionalProperties: false`.
    const sub = Object.hasOwn(properties, key) ? properties[key] : undefined;
    if (sub) check(sub, v, `${path}/${keyInPath(key)}`, issues);
    else if (schema.additionalProperties === false) issues.push({ path: `${path}/${keyInPath(key)}`, message: 'is not allowed' });
  }
}

function sameValue(a: unknown, b: unknown): boolean {
  return a === b || (typeof a === 'object' && a !== null && JSON.stringify(a) === JSON.stringify(b));
}

function preview(values: readonly unknown[]): string {
  const shown = values.slice(0, 8).map((v) => JSON.stringify(v)).join(', ');
  return values.length > 8 ? `${shown}, … (${values.length})` : shown;
}
