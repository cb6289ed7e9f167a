import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import fc from 'fast-check';
import { ConfigError } from '../../src/errors/index.ts';
import { loadCstTemplates } from '../../src/cst/index.ts';
import { loadPromptSpec, parsePromptSpec } from '../../src/star/prompt/spec.ts';
import { StarModelError } from '../../src/star/registry/errors.ts';
import { MODEL_FILES, readManifest } from '../../src/star/registry/manifest.ts';
import { readParity } from '../../src/star/registry/parity.ts';
import { StarTokenizer } from '../../src/star/tokenizer/index.ts';
import { FIXTURE_MODEL } from '../star/helpers.ts';
import { expectTaxonomy, fuzz } from './fuzz.ts';
import { applyJsonMutations, jsonMutation } from './json-mutation.ts';

/**
 * The files a STAR model directory and the prompt are read from: `star.json`, `parity.jsonl`,
 * `tokenizer.json`, the prompt spec and the CST templates. Contract: each reader returns a valid value or
 * throws its documented error (`StarModelError` MODEL_INVALID for model files, `ConfigError` naming the
 * field for the spec and templates), never a raw SyntaxError, TypeError or RangeError.
 */

const dir = mkdtempSync(join(tmpdir(), 'model-fuzz-'));
after(() => rmSync(dir, { recursive: true, force: true }));
let seq = 0;

const VALID_MANIFEST = JSON.parse(readFileSync(join(FIXTURE_MODEL, MODEL_FILES.manifest), 'utf8')) as unknown;
const PARITY_LINES = readFileSync(join(FIXTURE_MODEL, MODEL_FILES.parity), 'utf8').split('\n').filter((l) => l.trim() !== '');
const VALID_SPEC = JSON.parse(readFileSync(new URL('../../schemas/prompt-template.json', import.meta.url), 'utf8')) as unknown;
const VALID_CST = JSON.parse(readFileSync(new URL('../../schemas/cst-templates.json', import.meta.url), 'utf8')) as unknown;

const deep = (n: number) => `${'{"a":'.repeat(n)}1${'}'.repeat(n)}`;
/** Bytes of a broken file: not JSON, not UTF-8, a BOM, deep nesting, truncation. */
const brokenText = fc.oneof(
  fc.constantFrom('', ' ', 'null', '[]', '"star"', '{', '\ufeff{}', deep(10_000), `[${'['.repeat(50_000)}`, '{"a": NaN}', '{"a": Infinity}', '{"a": 1e999}'),
  fc.uint8Array({ maxLength: 64 }).map((a) => Buffer.from(a).toString('latin1')),
  fc.json({ maxDepth: 3 }),
);

function modelDir(manifest: string | Buffer, parity: string | Buffer = PARITY_LINES.join('\n')): string {
  const d = join(dir, `m${seq++}`);
  mkdirSync(d);
  writeFileSync(join(d, MODEL_FILES.manifest), manifest);
  writeFileSync(join(d, MODEL_FILES.parity), parity);
  writeFileSync(join(d, MODEL_FILES.onnx), 'not a model');
  writeFileSync(join(d, MODEL_FILES.tokenizer), '{}');
  return d;
}

function expectModelInvalid(read: () => unknown): void {
  try {
    read();
  } catch (err) {
    expectTaxonomy(err, { family: 'fatal', codes: ['MODEL_INVALID'], type: StarModelError });
  }
}

function expectConfigError(read: () => unknown, prefix: string): void {
  try {
    read();
  } catch (err) {
    const e = expectTaxonomy(err, { family: 'fatal', codes: ['CONFIG_INVALID'], type: ConfigError }) as ConfigError;
    assert.ok(e.field.startsWith(prefix), `the error names the file or field: ${e.field}`);
  }
}

describe('fuzz: STAR model files and prompt specs', () => {
  it('star.json: mutated or broken manifests give a manifest or MODEL_INVALID', () => {
    const content = fc.oneof(
      fc.array(jsonMutation, { minLength: 1, maxLength: 3 }).map((m) => JSON.stringify(applyJsonMutations(VALID_MANIFEST, m))),
      brokenText,
    );
    fuzz(
      fc.property(content, (text) => {
        const d = modelDir(text);
        expectModelInvalid(() => {
          const m = readManifest(d);
          assert.ok(/^[A-Za-z0-9._-]+$/.test(m.version) && Number.isInteger(m.maxLength) && m.maxLength >= 3, 'an accepted manifest is valid');
        });
      }),
      { seed: 11_100, numRuns: 300 },
    );
  });

  it('star.json: a model directory missing a file, or with a directory in its place, is MODEL_INVALID', () => {
    fuzz(
      fc.property(fc.constantFrom(...Object.values(MODEL_FILES)), fc.boolean(), (name, asDirectory) => {
        const d = modelDir(JSON.stringify(VALID_MANIFEST));
        rmSync(join(d, name));
        if (asDirectory) mkdirSync(join(d, name));
        assert.throws(() => readManifest(d), (err) => expectTaxonomy(err, { family: 'fatal', codes: ['MODEL_INVALID'] }) !== null);
      }),
      { seed: 11_150, numRuns: 20 },
    );
  });

  it('parity.jsonl: mutated lines, blank lines, random bytes give parity cases or MODEL_INVALID', () => {
    const line = fc.oneof(
      { weight: 3, arbitrary: fc.tuple(fc.constantFrom(...PARITY_LINES), fc.array(jsonMutation, { minLength: 1, maxLength: 3 })).map(([l, m]) => JSON.stringify(applyJsonMutations(JSON.parse(l), m))) },
      { weight: 2, arbitrary: fc.constantFrom(...PARITY_LINES) },
      { weight: 1, arbitrary: brokenText.map((t) => t.replace(/\n/g, ' ')) },
    );
    fuzz(
      fc.property(fc.array(line, { maxLength: 4 }), fc.constantFrom('\n', '\r\n', '\n\n'), (lines, eol) => {
        const d = modelDir(JSON.stringify(VALID_MANIFEST), lines.join(eol));
        expectModelInvalid(() => {
          const cases = readParity(join(d, MODEL_FILES.parity));
          for (const p of cases) {
            const n = p.case.candidates.length;
            assert.ok(p.texts.length === n && p.ids.length === n && p.scores.length === n, 'one text, id row and score per candidate');
            for (const c of p.case.candidates) for (const v of Object.values(c.features)) assert.ok(Number.isFinite(v), 'features are finite');
          }
        });
      }),
      { seed: 11_200, numRuns: 200 },
    );
  });

  it('tokenizer.json: mutated tokenizers are refused with MODEL_INVALID or tokenize text into ids', () => {
    const valid = JSON.parse(readFileSync(join(FIXTURE_MODEL, MODEL_FILES.tokenizer), 'utf8')) as unknown;
    fuzz(
      fc.property(fc.array(jsonMutation, { minLength: 1, maxLength: 2 }), fc.string({ maxLength: 30 }), (mutations, text) => {
        expectModelInvalid(() => {
          const t = StarTokenizer.fromJson(applyJsonMutations(valid, mutations), 'tokenizer.json');
          for (const id of t.ids(text)) assert.ok(Number.isInteger(id) && id >= 0);
        });
      }),
      { seed: 11_300, numRuns: 60 },
    );
  });

  it('prompt spec: mutated or broken specs give a spec or a ConfigError naming the field', () => {
    fuzz(
      fc.property(fc.array(jsonMutation, { minLength: 1, maxLength: 3 }), (mutations) => {
        expectConfigError(() => parsePromptSpec(applyJsonMutations(VALID_SPEC, mutations), 'prompt-template'), 'prompt-template:');
      }),
      { seed: 11_400, numRuns: 200 },
    );
    fuzz(
      fc.property(brokenText, (text) => {
        const path = join(dir, `spec${seq++}.json`);
        writeFileSync(path, text);
        expectConfigError(() => loadPromptSpec(path), path);
      }),
      { seed: 11_450, numRuns: 60 },
    );
  });

  it('CST templates: mutated or broken files give templates or a ConfigError naming the field', () => {
    const content = fc.oneof(
      fc.array(jsonMutation, { minLength: 1, maxLength: 3 }).map((m) => JSON.stringify(applyJsonMutations(VALID_CST, m))),
      brokenText,
    );
    fuzz(
      fc.property(content, (text) => {
        const path = join(dir, `cst${seq++}.json`);
        writeFileSync(path, text);
        expectConfigError(() => loadCstTemplates(path), 'cst-templates');
      }),
      { seed: 11_500, numRuns: 200 },
    );
  });
});
