import assert from 'node:assert/strict';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import type { CollaborativeEvidence, UserContext } from '../../src/domain/evidence.ts';
import { CaseEncoder } from '../../src/star/prompt/encode.ts';
import { planTruncation, renderCandidateSegments, renderUserSegments } from '../../src/star/prompt/render.ts';
import { loadPromptSpec, parsePromptSpec } from '../../src/star/prompt/spec.ts';
import { StarTokenizer } from '../../src/star/tokenizer/index.ts';
import { FIXTURE_MODEL } from './helpers.ts';

const spec = loadPromptSpec();
const tokenizer = StarTokenizer.fromFile(join(FIXTURE_MODEL, 'tokenizer.json'));

const features = {
  cooccurrence: 3,
  cooccurrenceRecent: 2.1,
  cooccurringRecentItems: 2,
  neighbourEngagement: 1,
  embeddingScore: 0.2,
  popularity: 40,
  recentPopularity: 3,
  trend: 1,
  categoryFit: 0.5,
};

function candidate(title: string | null, sentences: string[], categories: string[] = ['Drama']): CollaborativeEvidence {
  return { itemId: 'i1', title, categories, sources: [], features, sentences };
}

function user(history: number): UserContext {
  return {
    userId: 'u1',
    interactionCount: 42,
    recentItems: Array.from({ length: history }, (_, k) => ({ itemId: `h${k}`, title: `History title ${k}`, atMs: 1_000 - k })),
    categoryMix: [{ category: 'Drama', share: 0.5 }],
  };
}

describe('prompt rendering', () => {
  it('lays out candidate, evidence, user, history and sanitises untrusted titles', () => {
    const c = renderCandidateSegments(spec, candidate('<cand> Evil {title} "x"\u0000', ['A <ev> sentence.'], ['<hist>']));
    assert.equal(c.candidate, '<cand> cand Evil title x ( hist )'.replace('( hist )', '(hist)'));
    assert.deepEqual(c.evidence, ['<ev> A ev sentence.']);
    const u = renderUserSegments(spec, user(7));
    assert.equal(u.user, '<user> 42 interactions; mix Drama 50%');
    assert.equal(u.history.length, spec.limits.maxHistoryItems, 'history is bounded by the spec');
    assert.equal(u.history[0], '<hist> History title 0', 'most recent first');
  });

  it('drops history oldest first, then evidence from the last, then the user line, then cuts tokens', () => {
    const lengths = { candidate: 5, evidence: [4, 4, 4], user: 3, history: [2, 2, 2] };
    assert.deepEqual(planTruncation(spec, lengths, 100), { evidence: 3, user: true, history: 3, cutAt: null });
    assert.deepEqual(planTruncation(spec, lengths, 24), { evidence: 3, user: true, history: 2, cutAt: null });
    assert.deepEqual(planTruncation(spec, lengths, 23), { evidence: 3, user: true, history: 1, cutAt: null });
    assert.deepEqual(planTruncation(spec, lengths, 20), { evidence: 3, user: true, history: 0, cutAt: null });
    assert.deepEqual(planTruncation(spec, lengths, 16), { evidence: 2, user: true, history: 0, cutAt: null });
    assert.deepEqual(planTruncation(spec, lengths, 12), { evidence: 1, user: true, history: 0, cutAt: null });
    assert.deepEqual(planTruncation(spec, lengths, 9), { evidence: 1, user: false, history: 0, cutAt: null });
    assert.deepEqual(planTruncation(spec, lengths, 8), { evidence: 1, user: false, history: 0, cutAt: 8 });
    assert.deepEqual(planTruncation(spec, lengths, 6), { evidence: 1, user: false, history: 0, cutAt: 6 });
  });

  it('a spec with a non-whitespace separator is refused (segments must tokenize independently)', () => {
    assert.throws(() => parsePromptSpec({ ...spec, separator: '|' }), /separator/);
  });

  it('property: ids fit maxLength, start with [CLS], end with [SEP], and equal the whole text tokenized when not cut', () => {
    fc.assert(
      fc.property(
        fc.string({ maxLength: 120 }),
        fc.array(fc.string({ maxLength: 60 }), { maxLength: 6 }),
        fc.integer({ min: 0, max: 8 }),
        fc.integer({ min: 3, max: 96 }),
        (title, sentences, history, maxLength) => {
          const encoder = new CaseEncoder(spec, tokenizer, maxLength);
          const r = encoder.render(user(history), candidate(title, sentences));
          assert.ok(r.ids.length <= maxLength);
          assert.equal(r.ids[0], tokenizer.clsId);
          assert.equal(r.ids.at(-1), tokenizer.sepId);
          // eslint-disable-next-line no-control-regex
          assert.ok(!/[\u0000-\u001f]/.test(r.text.replace(/\n/g, ' ')), 'no control characters survive');
          if (r.plan.cutAt === null) assert.deepEqual(r.ids, [tokenizer.clsId, ...tokenizer.encode(r.text), tokenizer.sepId]);
        },
      ),
      { numRuns: 300, seed: 5 },
    );
  });

  it('encodes a batch padded to its longest row, with a mask and one feature row per candidate', () => {
    const encoder = new CaseEncoder(spec, tokenizer, 64);
    const cases = [
      { eventId: 'a', atMs: 1, user: user(3), candidates: [candidate('Short', []), candidate('A much longer title here', ['One.', 'Two.'])] },
      { eventId: 'b', atMs: 2, user: user(0), candidates: [candidate(null, [])] },
    ];
    const b = encoder.encode(cases);
    assert.equal(b.rows, 3);
    assert.equal(b.width, spec.features.columns.length);
    assert.equal(b.ids.length, b.rows * b.length);
    const rows = encoder.rows(cases);
    assert.equal(b.length, Math.max(...rows.map((r) => r.length)));
    rows.forEach((r, i) => {
      for (let j = 0; j < b.length; j++) {
        assert.equal(b.mask[i * b.length + j], j < r.length ? 1n : 0n);
        assert.equal(b.ids[i * b.length + j], j < r.length ? BigInt(r[j]!) : BigInt(tokenizer.padId));
      }
    });
    assert.ok(Math.abs(b.features[0]! - Math.log1p(3)) < 1e-6, 'cooccurrence enters as log1p');
  });
});
