import { readFileSync } from 'node:fs';
import { z } from 'zod';
import { ConfigError } from '../errors/index.ts';
import { fieldAt, isStringField } from './fields.ts';
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

export interface ConfigSources {
  readonly file?: string;
  readonly env?: Readonly<Record<string, string | undefined>>;
  readonly overrides?: ConfigInput;
}

export function loadConfig(sources: ConfigSources = {}): Readonly<Config> {
  const fromFile = sources.file ? readJsonFile(sources.file) : {};
  const fromEnv = sources.env ? configFromEnv(sources.env) : {};
  const merged = deepMerge(deepMerge(fromFile, fromEnv), (sources.overrides ?? {}) as Record<string, unknown>);
  return parseConfig(merged);
}

export function parseConfig(input: unknown): Readonly<Config> {
  const result = configSchema.safeParse(input);
  if (!result.success) throw toConfigError(result.error);
  return deepFreeze(result.data);
}

function toConfigError(error: z.ZodError): ConfigError {
  const issue = error.issues[0];
  const field = issue && issue.path.length > 0 ? issue.path.join('.') : '(root)';
  const extra = issue?.code === 'unrecognized_keys' ? ` (${issue.keys.join(', ')})` : '';
  return new ConfigError(field, `${issue?.message ?? 'invalid'}${extra}`, { cause: error });
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
    .filter((e): e is [string, string] => e[0].startsWith(ENV_PREFIX) && e[1] !== undefined)
    .map(([name, raw]) => ({ name, raw, path: name.slice(ENV_PREFIX.length).split('__').map(snakeToCamel) }))
    .sort((a, b) => a.path.length - b.path.length);
  for (const { name, raw, path } of entries) {
    const last = path[path.length - 1]!;
    if (last.endsWith('File') && !fieldAt(path)) {
      const target = [...path.slice(0, -1), last.slice(0, -'File'.length)];
      setPath(out, target, readSecretFile(name, raw));
    } else {
      setPath(out, path, isStringField(path) ? raw : parseEnvValue(raw));
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

function parseEnvValue(raw: string): unknown {
  try {
    return JSON.parse(raw);
  } catch {
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
