import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { loadConfig } from '../../src/config/load.ts';
import type { ConfigInput } from '../../src/config/schema.ts';
import { fmt, loadCstTemplates, parseSentence, popularitySentence, render, type CstTemplates } from '../../src/cst/index.ts';
import type { CollaborativeEvidence } from '../../src/domain/evidence.ts';
import { generateCatalogue, generateStream } from '../../src/data/synthetic.ts';
import { buildEngine, type Engine } from '../../src/main.ts';
import { coldUser } from '../../src/pipeline/recommend.ts';
import { generateCandidates } from '../../src/stages/candidates/index.ts';
import { collectEvidence } from '../../src/stages/evidence/index.ts';
import { StoreView } from '../../src/stages/state/store-view.ts';
import { replayAndCheck } from './replay.ts';
import { contradictions } from './truth.ts';

const templates = loadCstTemplates();
const DAY = 86_400_000;

async function engineWith(overrides: ConfigInput = {}): Promise<Engine> {
  const config = loadConfig({ overrides: { ...overrides, store: { dimension: 8, ...overrides.store } } });
  const engine = buildEngine(config);
  await engine.store.init();
  return engine;
}

/** A seeded world and the config knobs the sentences depend on (cst-1 broke when seeds > window). */
const worlds = fc.record({
  users: fc.integer({ min: 4, max: 25 }),
  items: fc.integer({ min: 8, max: 50 }),
  events: fc.integer({ min: 40, max: 220 }),
  seed: fc.integer({ min: 1, max: 1_000_000 }),
  // A day (all popular), a month, two years (most items quiet by the end).
  durationMs: fc.constantFrom(DAY, 30 * DAY, 730 * DAY),
  cooccurrenceWindow: fc.integer({ min: 1, max: 8 }),
  recentItemsForCooccurrence: fc.integer({ min: 1, max: 15 }),
  neighbours: fc.integer({ min: 0, max: 12 }),
});

type World = typeof worlds extends fc.Arbitrary<infer W> ? W : never;

async function worldEngine(w: World): Promise<Engine> {
  return engineWith({
    store: { cooccurrenceWindow: w.cooccurrenceWindow },
    candidates: { recentItemsForCooccurrence: w.recentItemsForCooccurrence, fromPopular: 10 },
    evidence: { neighbours: w.neighbours },
  });
}

function streamOf(w: World) {
  const world = { users: w.users, items: w.items, events: w.events, seed: w.seed, startMs: Date.UTC(2020, 0, 1), durationMs: w.durationMs };
  return { catalogue: generateCatalogue(world), events: generateStream(world) };
}

describe('CST sentences are true of the state they describe', () => {
  it('for seeded generated worlds: every number in every sentence, at every event (property)', async () => {
    const exercised = new Map<string, number>();
    await fc.assert(
      fc.asyncProperty(worlds, async (w) => {
        const engine = await worldEngine(w);
        const { catalogue, events } = streamOf(w);
        const report = await replayAndCheck(engine, catalogue, events, templates);
        for (const [k, n] of report.byKey) exercised.set(k, (exercised.get(k) ?? 0) + n);
        assert.deepEqual(report.contradictions.slice(0, 5), [], `${report.contradictions.length} contradictions in ${report.sentences} sentences`);
        assert.ok(!report.byKey.has('unknown'));
      }),
      { numRuns: 12, seed: 17 },
    );
    // The runs must have met the templates whose numbers can go wrong, or passing proves little.
    for (const key of ['cooccurrence', 'neighbours', 'category', 'embedding', 'popularity', 'quiet']) {
      assert.ok((exercised.get(key) ?? 0) > 0, `no ${key} sentence was rendered`);
    }
  });

  it('for a user the stream has not seen: says so, and claims no taste match', async () => {
    const w = { users: 10, items: 30, events: 150, seed: 5, durationMs: 30 * DAY, cooccurrenceWindow: 5, recentItemsForCooccurrence: 10, neighbours: 5 };
    const engine = await worldEngine(w);
    const { catalogue, events } = streamOf(w);
    const all = [...events];
    await replayAndCheck(engine, catalogue, all, templates, { checkEvery: 1_000 });
    const view = new StoreView(engine.store, engine.mergeItem);
    const user = coldUser('nobody', engine.config.store.dimension, engine.config.store.consumedFilterBytes);
    const atMs = all.at(-1)!.timestampMs;
    const candidates = await generateCandidates(view, user, engine.caseOptions.candidates, atMs);
    const evidence = await collectEvidence(view, { user, candidates, nowMs: atMs }, { ...engine.caseOptions.evidence, maxSentences: 10 }, templates);
    assert.ok(evidence.candidates.length > 0, 'popular items for a cold user');
    for (const c of evidence.candidates) {
      assert.equal(c.sentences[0], templates.templates.newUser);
      assert.ok(!c.sentences.some((s) => parseSentence(s, templates)?.key === 'embedding'), c.sentences.join(' | '));
    }
    assert.ok(evidence.candidates.some((c) => c.sentences.some((s) => parseSentence(s, templates)?.key === 'popularity')), 'popular items say how popular');
    assert.deepEqual(await contradictions({ view, engine, user, atMs, candidates: evidence.candidates }, templates), []);
  });
});

describe('the truth check fails on a contradiction', () => {
  /** One case of a world, its evidence and state, for tampering with. */
  async function oneCase(): Promise<{ engine: Engine; view: StoreView; user: NonNullable<ReturnType<StoreView['user']>>; atMs: number; evidence: CollaborativeEvidence[] }> {
    const w = { users: 12, items: 40, events: 250, seed: 9, durationMs: 30 * DAY, cooccurrenceWindow: 3, recentItemsForCooccurrence: 10, neighbours: 6 };
    const engine = await worldEngine(w);
    const { catalogue, events } = streamOf(w);
    const all = [...events];
    await replayAndCheck(engine, catalogue, all.slice(0, -1), templates, { checkEvery: 1_000 });
    const last = all.at(-1)!;
    const view = new StoreView(engine.store, engine.mergeItem);
    await view.load([last.userId], []);
    await view.load([], engine.learner.itemsToLoad(view.user(last.userId), last, []));
    const user = engine.learner.learn(view, last, []);
    const candidates = await generateCandidates(view, user, engine.caseOptions.candidates, last.timestampMs);
    const evidence = await collectEvidence(view, { user, candidates, nowMs: last.timestampMs }, { ...engine.caseOptions.evidence, maxSentences: 10 }, templates);
    return { engine, view, user, atMs: last.timestampMs, evidence: evidence.candidates };
  }

  it('flags every number changed by one, in every sentence of a case', async () => {
    const { engine, view, user, atMs, evidence } = await oneCase();
    assert.deepEqual(await contradictions({ view, engine, user, atMs, candidates: evidence }, templates), []);
    let tampered = 0;
    for (const [i, c] of evidence.entries()) {
      for (const [j, sentence] of c.sentences.entries()) {
        const numbers = [...sentence.matchAll(/\d+(\.\d+)?/g)].filter((m) => !/"[^"]*$/.test(sentence.slice(0, m.index)));
        for (const m of numbers) {
          const bumped = m[1] ? (Number(m[0]) + 0.5).toFixed(2) : String(Number(m[0]) + 1);
          const wrong = sentence.slice(0, m.index) + bumped + sentence.slice(m.index! + m[0].length);
          const candidates = evidence.map((e, k) => (k === i ? { ...e, sentences: e.sentences.map((s, l) => (l === j ? wrong : s)) } : e));
          const found = await contradictions({ view, engine, user, atMs, candidates }, templates);
          assert.ok(found.length > 0, `"${wrong}" (was "${sentence}") passed the check`);
          tampered++;
        }
      }
    }
    assert.ok(tampered > 10, `${tampered} numbers tampered with`);
  });

  it("flags cst-1's co-occurrence sentence, which named the store's window rather than the items counted", async () => {
    const { engine, view, user, atMs, evidence } = await oneCase();
    const window = engine.config.store.cooccurrenceWindow;
    const cst1 = evidence
      .map((c) => ({ c, parsed: c.sentences.map((s) => parseSentence(s, templates)).find((p) => p?.key === 'cooccurrence') }))
      .filter((x) => x.parsed && Number(x.parsed.values.items) > window);
    assert.ok(cst1.length > 0, 'a candidate that co-occurs with more recent items than the window');
    const { c, parsed } = cst1[0]!;
    const old = render(templates.templates.cooccurrence, { ...parsed!.values, window: fmt.int(window) });
    const candidates = evidence.map((e) => (e === c ? { ...e, sentences: [old] } : e));
    const found = await contradictions({ view, engine, user, atMs, candidates }, templates);
    assert.ok(found.some((f) => f.includes(`of ${window}`)), found.join('\n'));
  });

  it('flags a popularity read at a time before the events it counts (the future) or long after (the wall clock)', async () => {
    const { engine, view, user, atMs, evidence } = await oneCase();
    assert.deepEqual(await contradictions({ view, engine, user, atMs, candidates: evidence }, templates), []);
    const popular = evidence.filter((c) => c.sentences.some((s) => parseSentence(s, templates)?.key === 'popularity'));
    assert.ok(popular.length > 0);
    // The same sentences claimed as of a year later: their counts no longer hold.
    assert.ok((await contradictions({ view, engine, user, atMs: atMs + 365 * DAY, candidates: popular }, templates)).length > 0);
    assert.ok((await contradictions({ view, engine, user, atMs: atMs - 10 * DAY, candidates: popular }, templates)).length > 0);
  });
});

describe('popularity sentences', () => {
  const at = Date.UTC(2024, 5, 1);
  const base = { trend: 1, atMs: at };

  it('state the decayed count while it is at least one', () => {
    assert.equal(popularitySentence(templates, { ...base, long: 12.4, interactions: 30, latestMs: at - DAY }), '12 recent interactions overall, steady.');
  });

  it('call an item with old interactions quiet, with its true count and the age of the latest', () => {
    const s = popularitySentence(templates, { ...base, long: 0.2, interactions: 310, latestMs: at - 45 * DAY });
    assert.equal(s, 'Quiet lately: 310 interactions in all, the latest 6 weeks ago.');
  });

  it('call new only an item with no interaction at all', () => {
    assert.equal(popularitySentence(templates, { ...base, long: 0, interactions: 0, latestMs: null }), templates.templates.cold);
  });

  it('word ages in the coarsest unit within half a unit', () => {
    const cases: [number, string][] = [
      [0, '1 minute'],
      [89_000, '1 minute'],
      [3_599_000, '60 minutes'],
      [3_600_000, '1 hour'],
      [47 * 3_600_000, '47 hours'],
      [2 * DAY, '2 days'],
      [13 * DAY, '13 days'],
      [14 * DAY, '2 weeks'],
      [59 * DAY, '8 weeks'],
      [60 * DAY, '2 months'],
      [729 * DAY, '24 months'],
      [1_000 * DAY, '3 years'],
    ];
    for (const [ms, text] of cases) assert.equal(fmt.age(ms), text, `${ms} ms`);
  });
});

/** Template texts the checker must be able to read back; a template edit that breaks parsing fails here. */
describe('parseSentence', () => {
  it('reads back what render wrote, for every template', () => {
    const values = { count: '7', items: '2', window: '9', title: 'A "b" c', total: '20', category: 'Drama', score: '0.42', rank: '3', candidates: '20', trend: 'rising', age: '3 weeks' };
    for (const key of Object.keys(templates.templates) as (keyof CstTemplates['templates'])[]) {
      const sentence = render(templates.templates[key], values);
      const parsed = parseSentence(sentence, templates);
      assert.equal(parsed?.key, key, sentence);
    }
    assert.equal(parseSentence('Co-occurs 75 times with 9 of your last 5 items, most with "x".', templates), null, 'a cst-1 sentence');
  });
});
