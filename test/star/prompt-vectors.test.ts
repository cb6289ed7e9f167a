import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import type { ScoringCase } from '../../src/domain/evidence.ts';
import { parseScoringCase } from '../../src/star/prompt/case-schema.ts';
import { CaseEncoder } from '../../src/star/prompt/encode.ts';
import { loadPromptSpec } from '../../src/star/prompt/spec.ts';
import { StarTokenizer } from '../../src/star/tokenizer/index.ts';
import { FIXTURE_MODEL, VECTORS_FILE } from './helpers.ts';

// The shared vectors: written by the Python port (train/starstream_train/vectors.py) with the Python
// `tokenizers` library; train/tests/test_prompt.py reads the same file. Equal text, ids and features here
// prove the TypeScript renderer and @huggingface/tokenizers agree with the trainer.

interface Vector {
  readonly name: string;
  readonly promptTemplateVersion: string;
  readonly maxLength: number;
  readonly case: ScoringCase;
  readonly expected: readonly { text: string; ids: number[]; features: number[] }[];
}

const vectors: Vector[] = readFileSync(VECTORS_FILE, 'utf8')
  .split('\n')
  .filter((l) => l.trim() !== '')
  .map((l) => {
    const v = JSON.parse(l) as Vector;
    return { ...v, case: parseScoringCase(v.case) };
  });
const spec = loadPromptSpec();
const tokenizer = StarTokenizer.fromFile(join(FIXTURE_MODEL, 'tokenizer.json'));

describe('shared prompt vectors (TypeScript side)', () => {
  it('cover every truncation step and the current template version', () => {
    assert.ok(vectors.length >= 12);
    for (const v of vectors) assert.equal(v.promptTemplateVersion, spec.version, `${v.name} was written for another template`);
    const encoders = new Map<number, CaseEncoder>();
    const plans = vectors.flatMap((v) => {
      const encoder = encoders.get(v.maxLength) ?? new CaseEncoder(spec, tokenizer, v.maxLength);
      encoders.set(v.maxLength, encoder);
      return v.case.candidates.map((c) => encoder.render(v.case.user, c).plan);
    });
    assert.ok(plans.some((p) => p.history < 5 && p.history > 0), 'some vector drops history items');
    assert.ok(plans.some((p) => !p.user), 'some vector drops the user line');
    assert.ok(plans.some((p) => p.cutAt !== null), 'some vector needs the hard token cut');
  });

  for (const v of vectors) {
    it(`renders, tokenizes and featurizes "${v.name}" like the trainer`, () => {
      const encoder = new CaseEncoder(spec, tokenizer, v.maxLength);
      v.case.candidates.forEach((candidate, j) => {
        const expected = v.expected[j]!;
        const got = encoder.render(v.case.user, candidate);
        assert.equal(got.text, expected.text);
        assert.deepEqual(got.ids, expected.ids);
        const features = encoder.features(v.case.user, candidate);
        expected.features.forEach((x, k) => assert.ok(Math.abs(features[k]! - x) <= 1e-6, `feature ${k}: ${features[k]} vs ${x}`));
        if (got.plan.cutAt === null) {
          // Segment-wise ids equal the tokenizer's ids of the whole text (segments meet at whitespace).
          assert.deepEqual([tokenizer.clsId, ...tokenizer.encode(got.text), tokenizer.sepId], got.ids);
        }
      });
    });
  }
});
