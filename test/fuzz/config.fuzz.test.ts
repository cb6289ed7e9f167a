import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import fc from 'fast-check';
import { z } from 'zod';
import { unwrap } from '../../src/config/fields.ts';
import { loadConfig } from '../../src/config/load.ts';
import { configSchema } from '../../src/config/schema.ts';
import { ConfigError } from '../../src/errors/index.ts';
import { expectTaxonomy, fuzz } from './fuzz.ts';

/**
 * Random configuration from the environment and from files. Contract: `loadConfig` returns a frozen config or
 * throws `ConfigError` whose `field` names what is wrong (the field's dotted path, the variable of an
 * unreadable secret file, or `(file)` for a file that is not a JSON object), never another error; no input
 * pollutes Object.prototype; a secret's value never appears in an error message.
 */

const dir = mkdtempSync(join(tmpdir(), 'config-fuzz-'));
after(() => rmSync(dir, { recursive: true, force: true }));
let fileSeq = 0;
function file(content: string | Uint8Array): string {
  const path = join(dir, `f${fileSeq++}`);
  writeFileSync(path, content);
  return path;
}

/** Every leaf field of the schema: its path and env name. */
interface Leaf {
  readonly path: readonly string[];
  readonly env: string;
}
function leaves(schema: z.ZodType, path: string[] = [], out: Leaf[] = []): Leaf[] {
  const inner = unwrap(schema);
  if (inner instanceof z.ZodObject) {
    for (const [key, child] of Object.entries(inner.shape as Record<string, z.ZodType>)) leaves(child, [...path, key], out);
  } else {
    const env = `STARSTREAM_${path.map((p) => p.replace(/[A-Z]/g, (c) => `_${c}`).toUpperCase()).join('__')}`;
    out.push({ path, env });
  }
  return out;
}
const LEAVES = leaves(configSchema);
const DEFAULTS = loadConfig({});
const SECRET_LEAVES = LEAVES.filter((l) => /password|apiKey|apiToken/i.test(l.path.at(-1)!));

/** Values as an environment holds them: text, numbers, JSON of every shape, and the classics. */
const envValue = fc.oneof(
  fc.string({ maxLength: 20 }),
  fc.constantFrom('', ' ', '0', '-1', '1.5', '1e400', '-0', 'NaN', 'Infinity', 'null', 'true', 'false', '[]', '{}', '"quoted"', '[1,2', '{"__proto__": {"polluted": 1}}', '{"constructor": {"prototype": {"polluted": 1}}}'),
  fc.json({ maxDepth: 3 }),
  fc.integer().map(String),
  fc.double().map(String),
);

/** Variable names: real fields, real fields with a wrong tail, `_FILE` forms, and random segments. */
const envName = fc.oneof(
  fc.constantFrom(...LEAVES.map((l) => l.env)),
  fc.tuple(fc.constantFrom(...LEAVES.map((l) => l.env)), fc.constantFrom('__X', '_FILE', '__FILE', 'S', '__', '__PROTO__', '__CONSTRUCTOR__PROTOTYPE')).map(([a, b]) => a + b),
  fc.array(fc.stringMatching(/^[A-Z0-9_]{0,12}$/), { minLength: 1, maxLength: 4 }).map((segs) => `STARSTREAM_${segs.join('__')}`),
  fc.constantFrom('STARSTREAM_', 'STARSTREAM___', 'STARSTREAM_CONSTRUCTOR__PROTOTYPE__POLLUTED', 'STARSTREAM_TO_STRING', 'STARSTREAM_HAS_OWN_PROPERTY__X', 'NOT_STARSTREAM_LOG_LEVEL'),
);

/**
 * Objects that are absent by default (optional sections such as `experiment`, `eventLog.kafka.sasl`): setting one
 * leaf creates them, so the first error may be any required field of such an ancestor.
 */
function createdAncestors(path: readonly string[]): string[] {
  const out: string[] = [];
  for (let n = 1; n < path.length; n++) {
    const prefix = path.slice(0, n);
    if (prefix.reduce<unknown>((node, k) => (node as Record<string, unknown> | undefined)?.[k], DEFAULTS) === undefined) out.push(prefix.join('.'));
  }
  return out;
}

function assertConfigContract(load: () => unknown): ConfigError | null {
  try {
    const config = load();
    assert.ok(Object.isFrozen(config), 'the config is frozen');
    return null;
  } catch (err) {
    const e = expectTaxonomy(err, { family: 'fatal', codes: ['CONFIG_INVALID'], type: ConfigError }) as ConfigError;
    assert.ok(e.field.length > 0, 'the error names a field');
    assert.ok(e.message.startsWith(`config ${e.field}: `), e.message);
    return e;
  } finally {
    assert.equal((Object.prototype as Record<string, unknown>).polluted, undefined, 'Object.prototype is untouched');
  }
}

describe('fuzz: configuration from env and files', () => {
  it('random environments give a config or a ConfigError naming the field', () => {
    fuzz(
      fc.property(fc.dictionary(envName, envValue, { maxKeys: 6 }), (env) => {
        assertConfigContract(() => loadConfig({ env }));
      }),
      { seed: 10_100, numRuns: 400 },
    );
  });

  it('a wrong value in one field is reported at that field (or a sibling the same object needs)', () => {
    const leaf = fc.constantFrom(...LEAVES);
    fuzz(
      fc.property(leaf, envValue, (l, raw) => {
        const err = assertConfigContract(() => loadConfig({ env: { [l.env]: raw } }));
        if (err === null) return;
        const dotted = l.path.join('.');
        const parent = l.path.slice(0, -1).join('.');
        assert.ok(
          err.field === dotted ||
            err.field.startsWith(`${dotted}.`) ||
            (parent !== '' && err.field.startsWith(`${parent}.`)) ||
            createdAncestors(l.path).some((a) => err.field.startsWith(`${a}.`)),
          `${l.env}=${JSON.stringify(raw)} was reported at ${err.field}: ${err.message}`,
        );
      }),
      { seed: 10_200, numRuns: 400 },
    );
  });

  it('config files with random JSON, deep nesting, prototype keys or non-UTF-8 bytes: a config or a ConfigError', () => {
    const deep = (n: number, open: string, close: string, inner = '1') => open.repeat(n) + inner + close.repeat(n);
    const content = fc.oneof(
      fc.json({ maxDepth: 4 }),
      fc.constantFrom(
        '',
        'null',
        '[]',
        '"text"',
        '{"__proto__": {"polluted": 1, "logLevel": "debug"}}',
        '{"constructor": {"prototype": {"polluted": 1}}}',
        '{"logLevel": "debug", "logLevel": 5}',
        '{"ops": {"port": 1e400}}',
        '{"ops": {"port": -0}}',
        '{"eventLog": {"kafka": {"brokers": [[[["a"]]]]}}}',
        deep(5_000, '{"a":', '}'),
        deep(100_000, '[', ']'),
        `{"eventLog": ${deep(2_000, '{"kafka":', '}', '{}')}}`,
      ),
      fc.uint8Array({ maxLength: 64 }),
      fc.record({ field: fc.constantFrom(...LEAVES), value: fc.jsonValue({ maxDepth: 2 }) }).map(({ field, value }) => {
        const obj: Record<string, unknown> = {};
        let node = obj;
        field.path.forEach((k, i) => {
          node[k] = i === field.path.length - 1 ? value : {};
          node = node[k] as Record<string, unknown>;
        });
        return JSON.stringify(obj);
      }),
    );
    fuzz(
      fc.property(content, fc.dictionary(envName, envValue, { maxKeys: 2 }), (text, env) => {
        const path = file(typeof text === 'string' ? text : Buffer.from(text));
        assertConfigContract(() => loadConfig({ file: path, env }));
      }),
      { seed: 10_300, numRuns: 300 },
    );
  });

  it('a __proto__ key anywhere (file, env JSON, overrides) is refused, never merged as a prototype', () => {
    const envName = (path: readonly string[]) => `STARSTREAM_${path.map((p) => p.replace(/[A-Z]/g, (c) => `_${c}`).toUpperCase()).join('__')}`;
    const nest = (path: readonly string[], inner: string) => path.reduceRight((acc, k) => `{${JSON.stringify(k)}: ${acc}}`, inner);
    fuzz(
      fc.property(fc.constantFrom(...LEAVES), fc.constantFrom('file', 'env', 'overrides', 'file+overrides'), (leaf, where) => {
        // {"__proto__": {<a real field of that object>: <a valid value>}} at the field's parent: if the prototype
        // were merged, the schema would read the field through it and accept the config.
        const parent = leaf.path.slice(0, -1);
        const valid = leaf.path.reduce<unknown>((node, k) => (node as Record<string, unknown> | undefined)?.[k], DEFAULTS) ?? null;
        const protoJson = `{"__proto__": ${JSON.stringify({ [leaf.path.at(-1)!]: valid })}}`;
        const nested = nest(parent, protoJson);
        const sources =
          where === 'file'
            ? { file: file(nested) }
            : where === 'overrides'
              ? { overrides: JSON.parse(nested) as Record<string, never> }
              : where === 'env' && parent.length > 0
                ? { env: { [envName(parent)]: protoJson } }
                : { file: file(nest(parent, '{}')), overrides: JSON.parse(nested) as Record<string, never> };
        const err = assertConfigContract(() => loadConfig(sources));
        assert.ok(err, `${where}: ${nested} was accepted`);
        // Refused for the key itself, or first for a required field of an optional object it creates (kafka.sasl, experiment).
        assert.ok(
          /__proto__/.test(err.message) || err.field.startsWith(parent.join('.')) || createdAncestors(leaf.path).some((a) => err.field.startsWith(`${a}.`)),
          err.message,
        );
      }),
      { seed: 10_350, numRuns: 150 },
    );
  });

  it('secrets from *_FILE files: missing, empty, binary or whitespace-only files give a ConfigError, never the secret in a message', () => {
    const secretText = fc.stringMatching(/^[A-Za-z0-9]{12,24}$/).map((s) => `S3cr3t-${s}`);
    const body = fc.oneof(
      secretText.map((s) => ({ secret: s, bytes: Buffer.from(`${s}\n`) })),
      fc.constantFrom('', '   \n\t', '\u0000').map((s) => ({ secret: null, bytes: Buffer.from(s) })),
      fc.uint8Array({ maxLength: 32 }).map((a) => ({ secret: null, bytes: Buffer.from(a) })),
    );
    fuzz(
      fc.property(fc.constantFrom(...SECRET_LEAVES), body, fc.boolean(), fc.dictionary(envName, envValue, { maxKeys: 2 }), (leaf, { secret, bytes }, missing, noise) => {
        const path = missing ? join(dir, 'does-not-exist') : file(bytes);
        // A missing file is checked alone: noise may hold an unreadable file of its own, reported first.
        const env: Record<string, string> = { ...(missing ? {} : noise), [`${leaf.env}_FILE`]: path };
        const err = assertConfigContract(() => loadConfig({ env }));
        if (missing) {
          assert.ok(err, 'a missing secret file is an error');
          assert.equal(err.field, `${leaf.env}_FILE`);
        }
        if (err && secret) assert.ok(!err.message.includes(secret), `the secret leaked into: ${err.message}`);
      }),
      { seed: 10_400, numRuns: 200 },
    );
  });

  it('a secret given directly is never echoed in the error of a bad config', () => {
    fuzz(
      fc.property(fc.constantFrom(...SECRET_LEAVES), fc.stringMatching(/^[A-Za-z0-9]{16}$/), fc.dictionary(envName, envValue, { minKeys: 1, maxKeys: 3 }), (leaf, secret, noise) => {
        const err = assertConfigContract(() => loadConfig({ env: { ...noise, [leaf.env]: `pw-${secret}` } }));
        if (err) assert.ok(!err.message.includes(secret), err.message);
      }),
      { seed: 10_500, numRuns: 200 },
    );
  });
});
