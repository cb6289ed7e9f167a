import { readFileSync } from 'node:fs';
import { z } from 'zod';
import { ConfigError } from '../errors/index.ts';
import { envNameOf, fieldAt, fieldNamesAt, isStringField, nearestName } from './fields.ts';
import { configSchema, type Config, type ConfigInput } from './schema.ts';

/**
 * Builds the config from, in rising precedence: defaults, a JSON file, `STARSTREAM_*` environment variables,
 * then explicit overrides (CLI flags, tests). Validation happens once, here; the result is deeply frozen.
 *
 * Environment names are the field path in SCREAMING_SNAKE_CASE with `__` between levels:
 * `eventLog.kafka.brokers` is `STARSTREAM_EVENT_LOG__KAFKA__BROKERS`. Values of text fields are taken as
 * they are (`STARSTREAM_PIPELINE__GROUP_ID=2024` is the string "2024"); others are parsed as JSON (numbers,
 * booleans, arrays, objects). A variable ending in `_FILE` that does not name a field itself (as
 * `…SSL_CA_FILE` does) names a file whose contents (trimmed) are the value, for secrets mounted by
 * Kubernetes or Docker. Shallower variables apply first, so `…SASL='{…}'` and `…SASL__PASSWORD` combine in
 * any order.
 */

export const ENV_PREFIX = 'STARSTREAM_';

/** `STARSTREAM_*` variables that are not config fields: read by the launcher (`bin/starstream.js`), skipped here. */
export const NON_CONFIG_ENV: ReadonlySet<string> = new Set(['STARSTREAM_FROM_SOURCE']);

export interface ConfigSources {
  readonly file?: string;
  readonly env?: Readonly<Record<string, string | undefined>>;
  readonly overrides?: ConfigInput;
}

export function loadConfig(sources: ConfigSources = {}): Readonly<Config> {
  const fromFile = sources.file ? readJsonFile(sources.file) : {};
  const fromEnv = sources.env ? configFromEnv(sources.env) : {};
  const merged = deepMerge(deepMerge(fromFile, fromEnv), (sources.overrides ?? {}) as Record<string, unknown>);
  const origin = (path: readonly string[]): string | undefined => {
    const variable = sources.env ? envVariableFor(sources.env, path) : undefined;
    if (variable) return `set by ${variable}`;
    return sources.file && hasPath(fromFile, path) ? `in ${sources.file}` : undefined;
  };
  return parseConfig(merged, origin);
}

/**
 * Validates and freezes. `origin` says where the value at a path came from (`set by STARSTREAM_…`, `in
 * FILE`), for the error message; `loadConfig` passes it.
 */
export function parseConfig(input: unknown, origin: (path: readonly string[]) => string | undefined = () => undefined): Readonly<Config> {
  const result = configSchema.safeParse(input);
  if (!result.success) throw toConfigError(result.error, origin);
  return deepFreeze(result.data);
}

function toConfigError(error: z.ZodError, origin: (path: readonly string[]) => string | undefined): ConfigError {
  const issue = error.issues[0];
  const path = (issue?.path ?? []).map(String);
  const field = path.length > 0 ? path.join('.') : '(root)';
  if (issue?.code === 'unrecognized_keys') {
    // One line per unknown key would be noise: the first one, where it came from, and the near name if any.
    const key = issue.keys[0] ?? '';
    const where = origin([...path, key]);
    const near = nearestName(key, fieldNamesAt(path));
    const others = issue.keys.length > 1 ? ` (also ${issue.keys.slice(1).join(', ')})` : '';
    const hint = near ? `; did you mean ${near} (${envNameOf([...path, near])})?` : '';
    return new ConfigError(field, `unknown field ${key}${others}${where ? ` (${where})` : ''}${hint}`, { cause: error });
  }
  const where = origin(path);
  return new ConfigError(field, `${issue?.message ?? 'invalid'}${where ? ` (${where})` : ''}`, { cause: error });
}

/** The deepest `STARSTREAM_*` variable in `env` that sets `path` or an object above it. */
function envVariableFor(env: Readonly<Record<string, string | undefined>>, path: readonly string[]): string | undefined {
  let found: { name: string; depth: number } | undefined;
  for (const [name, value] of Object.entries(env)) {
    if (!name.startsWith(ENV_PREFIX) || NON_CONFIG_ENV.has(name) || value === undefined) continue;
    const fromName = envPathOf(name);
    const last = fromName.length - 1;
    const target = fromName[last]!.endsWith('File') && !fieldAt(fromName) ? [...fromName.slice(0, last), fromName[last]!.slice(0, -'File'.length)] : fromName;
    const covers = target.length <= path.length && target.every((key, i) => key === path[i]);
    if (covers && (!found || target.length > found.depth)) found = { name, depth: target.length };
  }
  return found?.name;
}

function envPathOf(name: string): string[] {
  return name.slice(ENV_PREFIX.length).split('__').map(snakeToCamel);
}

function hasPath(value: Record<string, unknown>, path: readonly string[]): boolean {
  let node: unknown = value;
  for (const key of path) {
    if (!isPlainObject(node) || !Object.hasOwn(node, key)) return false;
    node = node[key];
  }
  return true;
}

function readJsonFile(path: string): Record<string, unknown> {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (cause) {
    throw new ConfigError('(file)', `cannot read ${path}`, { cause });
  }
  try {
    const parsed: unknown = JSON.parse(text);
    if (!isPlainObject(parsed)) throw new Error('top level is not an object');
    return parsed;
  } catch (cause) {
    throw new ConfigError('(file)', `${path} is not a JSON object: ${(cause as Error).message}`, { cause });
  }
}

export function configFromEnv(env: Readonly<Record<string, string | undefined>>): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  const entries = Object.entries(env)
    .filter((e): e is [string, string] => e[0].startsWith(ENV_PREFIX) && !NON_CONFIG_ENV.has(e[0]) && e[1] !== undefined)
    .map(([name, raw]) => ({ name, raw, path: envPathOf(name) }))
    .sort((a, b) => a.path.length - b.path.length);
  for (const { name, raw, path } of entries) {
    const last = path[path.length - 1]!;
    if (last.endsWith('File') && !fieldAt(path)) {
      const target = [...path.slice(0, -1), last.slice(0, -'File'.length)];
      setPath(out, target, readSecretFile(name, raw));
    } else {
      setPath(out, path, isStringField(path) ? raw : parseEnvValue(name, path, raw));
    }
  }
  return out;
}

function readSecretFile(variable: string, path: string): string {
  try {
    return readFileSync(path, 'utf8').trim();
  } catch (cause) {
    throw new ConfigError(variable, `cannot read the file it names (${path})`, { cause });
  }
}

/**
 * JSON, or the text itself for a bare word (`kafka` for an enum field). Text that starts like a JSON object,
 * array or string but does not parse is a typo in JSON, reported as such rather than as a type mismatch.
 */
function parseEnvValue(variable: string, path: readonly string[], raw: string): unknown {
  try {
    return JSON.parse(raw);
  } catch (cause) {
    if (/^\s*[[{"]/.test(raw)) {
      const shown = raw.length > 80 ? `${raw.slice(0, 80)}…` : raw;
      // A name with an empty segment (`STARSTREAM_`, `STARSTREAM___X`) has no field: the variable is the only name.
      const field = path.every((segment) => segment !== '') ? path.join('.') : variable;
      throw new ConfigError(field, `is not valid JSON (${(cause as Error).message}; set by ${variable}): ${shown}`, { cause });
    }
    return raw;
  }
}

function snakeToCamel(segment: string): string {
  return segment.toLowerCase().replace(/_([a-z0-9])/g, (_, c: string) => c.toUpperCase());
}

function setPath(target: Record<string, unknown>, path: readonly string[], value: unknown): void {
  let node = target;
  path.forEach((key, i) => {
    if (i === path.length - 1) {
      const current = node[key];
      node[key] = isPlainObject(current) && isPlainObject(value) ? deepMerge(value, current) : value;
      return;
    }
    const next = node[key];
    node = isPlainObject(next) ? next : (node[key] = {});
  });
}

function isPlainObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function deepMerge(base: Record<string, unknown>, top: Record<string, unknown>): Record<string, unknown> {
  const out: Record<string, unknown> = { ...base };
  for (const [key, value] of Object.entries(top)) {
    const current = out[key];
    // Defined, not assigned: a `__proto__` key from JSON stays a key (that validation refuses) instead of
    // becoming the prototype, whose fields the schema would then read as if they were set.
    Object.defineProperty(out, key, {
      value: isPlainObject(current) && isPlainObject(value) ? deepMerge(current, value) : value,
      enumerable: true,
      writable: true,
      configurable: true,
    });
  }
  return out;
}

function deepFreeze<T>(value: T): T {
  if (typeof value === 'object' && value !== null && !Object.isFrozen(value)) {
    Object.freeze(value);
    for (const child of Object.values(value)) deepFreeze(child);
  }
  return value;
}
