import { readFileSync } from 'node:fs';
import { z } from 'zod';
import { ConfigError } from '../errors/index.ts';
import { configSchema, type Config, type ConfigInput } from './schema.ts';

/**
 * Builds the config from, in rising precedence: defaults, a JSON file, `STARSTREAM_*` environment variables,
 * then explicit overrides (CLI flags, tests). Validation happens once, here; the result is deeply frozen.
 *
 * Environment names are the field path in SCREAMING_SNAKE_CASE with `__` between levels:
 * `eventLog.kafka.brokers` is `STARSTREAM_EVENT_LOG__KAFKA__BROKERS`. Values are parsed as JSON when they
 * parse (numbers, booleans, arrays), else taken as strings. A variable ending in `_FILE` names a file whose
 * contents (trimmed) are the value, for secrets mounted by Kubernetes or Docker.
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
  for (const [name, raw] of Object.entries(env)) {
    if (!name.startsWith(ENV_PREFIX) || raw === undefined) continue;
    let rest = name.slice(ENV_PREFIX.length);
    let value: unknown;
    if (rest.endsWith('_FILE')) {
      rest = rest.slice(0, -'_FILE'.length);
      value = readSecretFile(name, raw);
    } else {
      value = parseEnvValue(raw);
    }
    const path = rest.split('__').map(snakeToCamel);
    setPath(out, path, value);
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
      node[key] = value;
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
    out[key] = isPlainObject(current) && isPlainObject(value) ? deepMerge(current, value) : value;
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
