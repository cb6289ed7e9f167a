import assert from 'node:assert/strict';
import { Writable } from 'node:stream';
import { describe, it } from 'node:test';
import { createRng, type Rng } from '../../../src/data/random.ts';
import type { CollaborativeEvidence, EvidenceFeatures, ScoringCase } from '../../../src/domain/evidence.ts';
import { createLogger } from '../../../src/logging/logger.ts';
import { baselineScore, DEFAULT_BASELINE_WEIGHTS } from '../../../src/star/baseline/scorer.ts';
import { BLEND, decide, WindowedHitRates } from '../../../src/star/online/guard.ts';
import { createOnlineScorer, onlineBlendOptions, ONLINE_BLEND_VERSION, type GuardChange, type OnlineBlendScorer } from '../../../src/star/online/scorer.ts';
import { loadConfig } from '../../../src/config/load.ts';
import { ONLINE_TERMS, startWeights, TERM_COUNT, termsInto } from '../../../src/star/online/terms.ts';

const CANDIDATES = 30;

/** Random features; every count an integer, so single-feature rankings have ties the tie-break settles. */
function randomFeatures(rng: Rng): EvidenceFeatures {
  return {
    cooccurrence: rng.int(50),
    cooccurrenceRecent: rng.next() * 20,
    cooccurringRecentItems: rng.int(6),
    neighbourEngagement: rng.int(20),
    embeddingScore: rng.next() * 2 - 1,
    popularity: rng.next() * 100,
    recentPopularity: rng.next() * 10,
    trend: rng.next() * 2,
    categoryFit: rng.next(),
  };
}

function evidence(itemId: string, features: EvidenceFeatures): CollaborativeEvidence {
  return { itemId, title: null, categories: [], sources: ['popular'], features, sentences: [] };
}

/**
 * A synthetic stream: `users` users take turns; at each turn the user is shown `CANDIDATES` fresh items with
 * random features and takes the one `choose` picks (with probability `noise` a random one instead). The
 * user's next case carries it as the newest recent item, with the interaction count one higher, as the
 * pipeline's cases do. The cases do not depend on the scorer, so several scorers can be fed the same ones.
 */
type StreamOptions = { seed: number; turns: number; users: number; noise: number; choose: (f: EvidenceFeatures) => number };

function streamCases(options: StreamOptions): ScoringCase[] {
  const rng = createRng(options.seed);
  const history = new Map<string, { itemId: string; atMs: number }[]>();
  const cases: ScoringCase[] = [];
  for (let t = 0; t < options.turns; t++) {
    const userId = `u${t % options.users}`;
    const recent = history.get(userId) ?? [];
    const candidates = Array.from({ length: CANDIDATES }, (_, i) => evidence(`i${t}-${i}`, randomFeatures(rng)));
    const c: ScoringCase = {
      eventId: `e${t}`,
      atMs: 1_000 * (t + 1),
      user: { userId, interactionCount: recent.length, recentItems: [...recent].reverse().map((r) => ({ ...r, title: null })), categoryMix: [] },
      candidates,
    };
    cases.push(c);
    let chosen = 0;
    if (rng.bool(options.noise)) chosen = rng.int(CANDIDATES);
    else for (let i = 1; i < CANDIDATES; i++) if (options.choose(candidates[i]!.features) > options.choose(candidates[chosen]!.features)) chosen = i;
    recent.push({ itemId: candidates[chosen]!.itemId, atMs: c.atMs + 500 });
    history.set(userId, recent);
  }
  return cases;
}

async function feed(scorer: OnlineBlendScorer, cases: readonly ScoringCase[]): Promise<void> {
  for (const c of cases) await scorer.score([c]);
}

async function replay(scorer: OnlineBlendScorer, options: StreamOptions): Promise<void> {
  await feed(scorer, streamCases(options));
}

function capturingLogger(): { logger: ReturnType<typeof createLogger>; lines: Record<string, unknown>[] } {
  const lines: Record<string, unknown>[] = [];
  const sink = new Writable({
    write(chunk: Buffer, _enc, done) {
      for (const line of chunk.toString().split('\n').filter(Boolean)) lines.push(JSON.parse(line) as Record<string, unknown>);
      done();
    },
  });
  return { logger: createLogger('info', sink), lines };
}

describe('online blend: terms', () => {
  it('starts as the baseline: the start weights over the terms give the baseline score', () => {
    const rng = createRng('terms');
    const w = startWeights();
    for (let n = 0; n < 50; n++) {
      const f = randomFeatures(rng);
      const x = new Float64Array(TERM_COUNT);
      termsInto(f, x, 0);
      const s = x.reduce((sum, v, j) => sum + v * w[j]!, 0);
      assert.ok(Math.abs(s - baselineScore(f, DEFAULT_BASELINE_WEIGHTS)) < 1e-9);
    }
  });
});

describe('online blend: learning', () => {
  it('moves toward a feature that predicts the next item, and then ranks better than its start', async () => {
    // neighbourEngagement starts at weight 0 (the baseline dropped it); here it is what users follow.
    const scorer = createOnlineScorer({ learningRate: 0.02, guard: { window: 1_000, minOutcomes: 200, margin: 0.01, checkEvery: 100 } });
    await replay(scorer, { seed: 7, turns: 6_000, users: 40, noise: 0.2, choose: (f) => f.neighbourEngagement });
    const s = scorer.stats();
    assert.ok(s.outcomes > 5_000, `joined ${s.outcomes}`);
    assert.equal(s.unmatched, 0);
    assert.ok(s.weights.neighbourEngagement > 0.3, `neighbourEngagement weight ${s.weights.neighbourEngagement}`);
    assert.ok(s.hitRates.blend! > s.hitRates.start! + 0.2, `blend ${s.hitRates.blend} vs start ${s.hitRates.start}`);
  });

  it('stays near its start weights when the start already ranks what users take first', async () => {
    const scorer = createOnlineScorer();
    await replay(scorer, { seed: 8, turns: 2_000, users: 20, noise: 0, choose: (f) => baselineScore(f, DEFAULT_BASELINE_WEIGHTS) });
    const s = scorer.stats();
    // Separable data only grows the scale of the weights (the L2 pull bounds it); the direction stays.
    const start = startWeights();
    const w = ONLINE_TERMS.map((t) => s.weights[t]);
    const dotWith = (a: ArrayLike<number>, b: ArrayLike<number>) => Array.from(a).reduce((sum, v, j) => sum + v * b[j]!, 0);
    const cosine = dotWith(w, start) / Math.sqrt(dotWith(w, w) * dotWith(start, start));
    assert.ok(cosine > 0.95, `cosine to the start weights ${cosine}`);
    assert.equal(s.serving, 'blend');
    assert.ok(s.hitRates.blend! >= s.hitRates.start! - 0.02);
  });

  it('is deterministic: the same stream gives the same weights', async () => {
    const run = async () => {
      const scorer = createOnlineScorer();
      await replay(scorer, { seed: 9, turns: 1_500, users: 30, noise: 0.3, choose: (f) => f.cooccurrence });
      return scorer.stats().weights;
    };
    assert.deepEqual(await run(), await run());
  });
});

describe('online blend: the join', () => {
  const features = (over: Partial<EvidenceFeatures> = {}): EvidenceFeatures => ({
    cooccurrence: 0, cooccurrenceRecent: 0, cooccurringRecentItems: 0, neighbourEngagement: 0, embeddingScore: 0, popularity: 0, recentPopularity: 0, trend: 1, categoryFit: 0, ...over,
  });
  const list = (eventId: string, atMs: number, count: number, recent: string[], ids: string[]): ScoringCase => ({
    eventId,
    atMs,
    user: { userId: 'u', interactionCount: count, recentItems: recent.map((itemId) => ({ itemId, title: null, atMs })), categoryMix: [] },
    candidates: ids.map((id, i) => evidence(id, features({ popularity: i }))),
  });

  it('joins a list with the user\'s next one: the earliest item taken since that was on it', async () => {
    const scorer = createOnlineScorer();
    await scorer.score([list('e1', 1_000, 3, ['h'], ['a', 'b', 'c'])]);
    // Two items taken since (newest first: c, then x before it; x was not a candidate): c is the positive.
    await scorer.score([list('e2', 2_000, 5, ['c', 'x', 'h'], ['d', 'e'])]);
    assert.equal(scorer.stats().outcomes, 1);
    // The next list's items were not taken: nothing to join.
    await scorer.score([list('e3', 3_000, 6, ['z', 'c'], ['f'])]);
    assert.equal(scorer.stats().outcomes, 1);
    assert.equal(scorer.stats().unmatched, 1);
  });

  it('does not join a list of the same moment (kept: the longer) nor an older one', async () => {
    const scorer = createOnlineScorer();
    await scorer.score([list('e1', 1_000, 3, ['h'], ['a', 'b'])]);
    await scorer.score([list('e1', 1_000, 3, ['h'], ['a', 'b', 'c'])]);
    await scorer.score([list('e0', 500, 2, [], ['q'])]);
    assert.equal(scorer.stats().outcomes, 0);
    await scorer.score([list('e2', 2_000, 4, ['c', 'h'], ['d'])]);
    assert.equal(scorer.stats().outcomes, 1, 'c was only on the longer list of the same moment');
  });

  it('scores a list with the weights of its own time, not with what was learned after it', async () => {
    const scorer = createOnlineScorer({ learningRate: 0.05 });
    const early = list('early', 1_500, 0, [], ['a', 'b', 'c']);
    const before = (await scorer.score([early]))[0]!;
    await replay(scorer, { seed: 3, turns: 500, users: 10, noise: 0, choose: (f) => f.trend });
    assert.notDeepEqual(scorer.stats().weights, { ...startWeightsRecord() }, 'it learned');
    // Scored again out of order (as the eval harness's batches do): the same as before anything was learned
    // after time 1,500 (the replay's first update is at 2,000).
    assert.deepEqual((await scorer.score([{ ...early, user: { ...early.user, userId: 'other' } }]))[0], before);
  });
});

function startWeightsRecord(): Record<string, number> {
  const w = startWeights();
  return Object.fromEntries(ONLINE_TERMS.map((t, j) => [t, w[j]!]));
}

describe('online blend: the guard', () => {
  it('falls back to the single signal the blend trails, visibly, and serves that signal\'s ranking', async () => {
    const { logger, lines } = capturingLogger();
    const changes: GuardChange[] = [];
    // A blend made worse than a single signal: it cannot learn (rate 0) and leans on a feature that carries
    // nothing here, while users take the item with the most co-occurrence.
    const scorer = createOnlineScorer(
      { learningRate: 0, start: { ...DEFAULT_BASELINE_WEIGHTS, cooccurrence: 0, cooccurrenceRecent: 5 }, guard: { window: 500, minOutcomes: 200, margin: 0.01, checkEvery: 50 } },
      { logger, onGuardChange: (c) => changes.push(c) },
    );
    assert.equal(scorer.modelVersion, ONLINE_BLEND_VERSION);
    await replay(scorer, { seed: 11, turns: 1_000, users: 25, noise: 0.1, choose: (f) => f.cooccurrence });
    const s = scorer.stats();
    assert.equal(s.serving, 'cooccurrence');
    assert.equal(scorer.modelVersion, `${ONLINE_BLEND_VERSION}+cooccurrence`);
    assert.equal(changes.length, 1);
    assert.equal(changes[0]!.from, 'blend');
    assert.equal(changes[0]!.to, 'cooccurrence');
    assert.ok(changes[0]!.servingHitRate > changes[0]!.blendHitRate + 0.01);
    assert.ok(changes[0]!.outcomes <= 250, `fell back after ${changes[0]!.outcomes} outcomes`);
    const warn = lines.find((l) => l.code === 'ONLINE_BLEND_FALLBACK');
    assert.ok(warn, 'a log line says so');
    assert.equal(warn.to, 'cooccurrence');
    // What it serves now is the co-occurrence ranking.
    const rng = createRng('after');
    const candidates = Array.from({ length: CANDIDATES }, (_, i) => evidence(`n${i}`, randomFeatures(rng)));
    const [scores] = await scorer.score([{ eventId: 'n', atMs: 10_000_000, user: { userId: 'new', interactionCount: 0, recentItems: [], categoryMix: [] }, candidates }]);
    const top = scores!.indexOf(Math.max(...scores!));
    const best = candidates.reduce((b, c, i) => (c.features.cooccurrence > candidates[b]!.features.cooccurrence ? i : b), 0);
    assert.equal(candidates[top]!.features.cooccurrence, candidates[best]!.features.cooccurrence);
  });

  it('keeps the blend serving while it leads every single signal', async () => {
    const scorer = createOnlineScorer({ guard: { window: 500, minOutcomes: 200, margin: 0.01, checkEvery: 50 } });
    // Users follow the start blend itself: no single term ranks as well.
    await replay(scorer, { seed: 12, turns: 1_500, users: 25, noise: 0.1, choose: (f) => baselineScore(f, DEFAULT_BASELINE_WEIGHTS) });
    assert.equal(scorer.stats().serving, 'blend');
    assert.deepEqual(scorer.stats().guardChanges, []);
  });

  it('decides with a margin and hysteresis', () => {
    const rates = [0.2, 0.3, 0.1];
    assert.deepEqual(decide(BLEND, 0.295, rates, 0.01), BLEND, 'within the margin');
    assert.deepEqual(decide(BLEND, 0.28, rates, 0.01), { kind: 'signal', signal: 1 });
    const serving = { kind: 'signal', signal: 1 } as const;
    assert.deepEqual(decide(serving, 0.293, rates, 0.01), serving, 'back only within half the margin');
    assert.deepEqual(decide(serving, 0.296, rates, 0.01), BLEND);
    assert.deepEqual(decide(serving, 0.2, [0.2, 0.3, 0.305], 0.01), serving, 'another signal must lead by the margin');
    assert.deepEqual(decide(serving, 0.2, [0.2, 0.3, 0.35], 0.01), { kind: 'signal', signal: 2 });
  });

  it('counts hit rates over a sliding window', () => {
    const w = new WindowedHitRates(2, 4);
    for (const hit of [true, true, false, false, false, false]) w.record([hit, !hit]);
    assert.equal(w.filled, 4);
    assert.equal(w.total, 6);
    assert.equal(w.rate(0), 0);
    assert.equal(w.rate(1), 1);
  });
});

describe('online blend: checkpoint state', () => {
  const guard = { window: 300, minOutcomes: 100, margin: 0.01, checkEvery: 50 };
  const byCooccurrence = { seed: 21, turns: 1_500, users: 40, noise: 0.2, choose: (f: EvidenceFeatures) => f.cooccurrence };

  it('a restored blend serves and goes on as the one it was captured from', async () => {
    const cases = streamCases({ ...byCooccurrence, turns: 3_000 });
    const original = createOnlineScorer({ guard });
    await feed(original, cases.slice(0, 1_500));
    const saved = JSON.parse(JSON.stringify(original.checkpointAttachment().capture())) as unknown;
    const restored = createOnlineScorer({ guard });
    restored.checkpointAttachment().restore(saved);
    assert.deepEqual(restored.checkpointAttachment().capture(), saved);
    assert.equal(restored.modelVersion, original.modelVersion);
    assert.deepEqual(restored.stats().hitRates, original.stats().hitRates);
    // Both take the rest of the stream; the restored one lacks the kept lists, so each user's first list after
    // the restart joins nothing (40 outcomes of 1,500): the weights end close, not equal.
    await feed(original, cases.slice(1_500));
    await feed(restored, cases.slice(1_500));
    assert.equal(original.stats().outcomes - restored.stats().outcomes, 40);
    const [a, b] = [original.stats().weights, restored.stats().weights];
    for (const t of ONLINE_TERMS) assert.ok(Math.abs(a[t] - b[t]) < 0.05, `${t}: ${a[t]} vs ${b[t]}`);
    const fresh = createOnlineScorer({ guard });
    await feed(fresh, cases.slice(1_500));
    assert.ok(Math.abs(fresh.stats().weights.cooccurrence - a.cooccurrence) > Math.abs(b.cooccurrence - a.cooccurrence), 'closer than a blend that starts again');
  });

  it('refuses, visibly, a state that does not fit (another window, version or shape) and keeps its own', async () => {
    const original = createOnlineScorer({ guard });
    await replay(original, byCooccurrence);
    const saved = original.checkpointAttachment().capture();
    for (const bad of [{ ...saved, version: 'online-blend-state-0' }, { ...saved, weights: saved.weights.slice(1) }, null, 'x']) {
      const { logger, lines } = capturingLogger();
      const fresh = createOnlineScorer({ guard }, { logger });
      const before = fresh.checkpointAttachment().capture();
      fresh.checkpointAttachment().restore(bad);
      assert.deepEqual(fresh.checkpointAttachment().capture(), before);
      assert.equal(lines[0]?.['code'], 'ONLINE_BLEND_STATE_REFUSED');
    }
    const { logger, lines } = capturingLogger();
    const otherWindow = createOnlineScorer({ guard: { ...guard, window: 500 } }, { logger });
    otherWindow.checkpointAttachment().restore(saved);
    assert.deepEqual(otherWindow.stats().weights, createOnlineScorer().stats().weights);
    assert.equal(lines[0]?.['why'], 'another guard window');
  });
});

describe('online blend: configuration', () => {
  it('judges hits at the published list\'s length (ranking.topK) and takes ranking.online as it is', () => {
    const ranking = loadConfig({ overrides: { ranking: { topK: 5, online: { learningRate: 0.01, guardWindow: 500 } } } }).ranking;
    const options = onlineBlendOptions(ranking);
    assert.equal(options.k, 5);
    assert.equal(options.learningRate, 0.01);
    assert.equal(options.guard?.window, 500);
  });
});
