import assert from 'node:assert/strict';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import type { CollaborativeEvidence, UserContext } from '../../src/domain/evidence.ts';
import { CaseEncoder } from '../../src/star/prompt/encode.ts';
import { loadPromptSpec } from '../../src/star/prompt/spec.ts';
import { StarTokenizer } from '../../src/star/tokenizer/index.ts';
import { FIXTURE_MODEL } from '../star/helpers.ts';
import { fuzz, hostileText } from './fuzz.ts';

/**
 * STAR's input rendering (schemas/prompt-template.json, src/star/prompt/) given hostile item titles,
 * categories, ids and sentences: prompt-injection text, segment markers, the tokenizer's special tokens,
 * control characters, lone surrogates. The spec's promise: untrusted text changes only the text. The layout
 * (candidate, evidence…, user, history… lines), the marker tokens and the special tokens are exactly what the
 * truncation plan says, whatever the data.
 */

const spec = loadPromptSpec();
const tokenizer = StarTokenizer.fromFile(join(FIXTURE_MODEL, 'tokenizer.json'));
const id = (token: string): number => {
  const ids = tokenizer.ids(token);
  assert.equal(ids.length, 1, `${token} is one special token`);
  return ids[0]!;
};
const MARKER = { cand: id('<cand>'), ev: id('<ev>'), user: id('<user>'), hist: id('<hist>') };
const SPECIAL = new Set([tokenizer.clsId, tokenizer.sepId, tokenizer.padId]);

const finite = fc.double({ noNaN: true, noDefaultInfinity: true, min: -1e6, max: 1e6 });
const features = fc.record({
  cooccurrence: finite,
  cooccurrenceRecent: finite,
  cooccurringRecentItems: finite,
  neighbourEngagement: finite,
  embeddingScore: finite,
  popularity: finite,
  recentPopularity: finite,
  trend: finite,
  categoryFit: finite,
});
const text = hostileText(12);
const candidate: fc.Arbitrary<CollaborativeEvidence> = fc.record({
  itemId: fc.oneof(fc.constantFrom('i1', '[SEP]', '<cand>', '\u0000'), text),
  title: fc.option(text, { freq: 5 }),
  categories: fc.array(text, { maxLength: 5 }),
  sources: fc.constant([]),
  features,
  sentences: fc.array(text, { maxLength: 8 }),
});
const user: fc.Arbitrary<UserContext> = fc.record({
  userId: text,
  interactionCount: fc.nat({ max: 1_000_000 }),
  recentItems: fc.array(fc.record({ itemId: fc.oneof(fc.constantFrom('h1', '[CLS]'), text), title: fc.option(text, { freq: 5 }), atMs: fc.nat() }), { maxLength: 8 }),
  categoryMix: fc.array(fc.record({ category: text, share: fc.double({ min: 0, max: 1, noNaN: true }) }), { maxLength: 5 }),
});

const count = (xs: readonly number[], v: number): number => xs.filter((x) => x === v).length;
// eslint-disable-next-line no-control-regex
const CONTROL = /[\u0000-\u0008\u000b-\u001f\u007f]/;
const LONE_SURROGATE = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/;

describe('fuzz: STAR prompt rendering with hostile text', () => {
  it('the layout, marker tokens and special tokens are the plan\'s, whatever the titles, ids and sentences', () => {
    const encoders = new Map<number, CaseEncoder>();
    fuzz(
      fc.property(user, candidate, fc.integer({ min: 3, max: 160 }), (u, c, maxLength) => {
        const encoder = encoders.get(maxLength) ?? new CaseEncoder(spec, tokenizer, maxLength);
        encoders.set(maxLength, encoder);
        const { text: rendered, ids, plan } = encoder.render(u, c);

        // Token ids: [CLS] … [SEP], within maxLength; no special token in between; markers as planned.
        assert.ok(ids.length <= maxLength);
        assert.equal(ids[0], tokenizer.clsId);
        assert.equal(ids.at(-1), tokenizer.sepId);
        const body = ids.slice(1, -1);
        for (const x of body) assert.ok(!SPECIAL.has(x), `a special token ${x} inside the text: ${JSON.stringify(rendered)}`);
        assert.equal(body[0], MARKER.cand, 'the candidate line comes first');
        assert.equal(count(body, MARKER.cand), 1);
        if (plan.cutAt === null) {
          assert.equal(count(body, MARKER.ev), plan.evidence, `evidence markers: ${JSON.stringify(rendered)}`);
          assert.equal(count(body, MARKER.user), plan.user ? 1 : 0);
          assert.equal(count(body, MARKER.hist), plan.history);
          assert.deepEqual(ids, [tokenizer.clsId, ...tokenizer.ids(rendered), tokenizer.sepId], 'ids are the text tokenized');
        } else {
          assert.ok(count(body, MARKER.ev) <= plan.evidence && count(body, MARKER.user) <= (plan.user ? 1 : 0) && count(body, MARKER.hist) <= plan.history);
        }

        // Text: one line per kept segment, each starting with its marker and holding no other.
        const lines = rendered.split(spec.separator);
        const expected = ['<cand>', ...Array<string>(plan.evidence).fill('<ev>'), ...(plan.user ? ['<user>'] : []), ...Array<string>(plan.history).fill('<hist>')];
        assert.equal(lines.length, expected.length, JSON.stringify(rendered));
        lines.forEach((line, k) => {
          assert.ok(line.startsWith(`${expected[k]} `), `line ${k} starts with ${expected[k]}: ${JSON.stringify(line)}`);
          const rest = line.slice(expected[k]!.length);
          assert.ok(!/[<>]/.test(rest), `no marker characters in the data: ${JSON.stringify(line)}`);
          assert.ok(!/\[(CLS|SEP|PAD|UNK)\]/.test(rest), `no special token text in the data: ${JSON.stringify(line)}`);
          assert.ok(!CONTROL.test(line), `no control characters: ${JSON.stringify(line)}`);
          assert.ok(!LONE_SURROGATE.test(line), `well-formed Unicode: ${JSON.stringify(line)}`);
        });
      }),
      { seed: 12_100, numRuns: 400 },
    );
  });

  it('a title is bounded to 80 UTF-16 units and loses only unsafe characters', () => {
    const encoder = new CaseEncoder(spec, tokenizer, 512);
    const plainUser: UserContext = { userId: 'u', interactionCount: 1, recentItems: [], categoryMix: [] };
    fuzz(
      fc.property(text, (title) => {
        const c: CollaborativeEvidence = { itemId: 'i1', title, categories: [], sources: [], features: { cooccurrence: 0, cooccurrenceRecent: 0, cooccurringRecentItems: 0, neighbourEngagement: 0, embeddingScore: 0, popularity: 0, recentPopularity: 0, trend: 1, categoryFit: 0 }, sentences: [] };
        const line = encoder.render(plainUser, c).text.split(spec.separator)[0]!;
        const shown = line.slice('<cand> '.length);
        if (shown === 'item i1') return; // nothing printable was left: the id stands in
        assert.ok(shown.length <= 80, `${shown.length} units: ${JSON.stringify(shown)}`);
      }),
      { seed: 12_200, numRuns: 300 },
    );
  });
});
