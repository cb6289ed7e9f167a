import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { replayEngine } from '../../src/eval/replay.ts';
import { casesExport } from '../../src/cli/cases.ts';
import { runEval, writeReport } from '../../src/cli/eval.ts';
import { loadConfig } from '../../src/config/load.ts';
import { createRng } from '../../src/data/random.ts';
import { generateCatalogue, generateStream } from '../../src/data/synthetic.ts';
import type { ScoringCase } from '../../src/domain/evidence.ts';
import type { Item } from '../../src/domain/events.ts';
import { DEFAULT_HARNESS_OPTIONS, runHarness, type HarnessSystem } from '../../src/eval/harness.ts';
import { buildReport, reportSvg, reportTables, TEACHER_SLICE } from '../../src/eval/report.ts';
import { SLICES } from '../../src/eval/slices.ts';
import { cooccurrenceScorer, popularityScorer } from '../../src/eval/systems.ts';
import { TeacherSampler, type TeacherRanker } from '../../src/eval/teacher.ts';
import { silentLogger } from '../../src/logging/logger.ts';
import { buildEngine } from '../../src/main.ts';
import { createBaselineScorer } from '../../src/star/baseline/scorer.ts';
import type { Scorer } from '../../src/star/port.ts';
import { FIXTURE_MODEL } from '../star/helpers.ts';
import { ScriptedModel, politeScript } from '../teacher/scripted-llm.ts';

const WORLD = { users: 120, items: 250, events: 2_500, seed: 5 };
const SMALL = { store: { dimension: 8 }, candidates: { fromEmbedding: 20, fromCooccurrence: 20, fromPopular: 10, maxCandidates: 40 }, evidence: { neighbours: 10 } };

/** A scorer that remembers every case object it was given, in order. */
function spy(inner: Scorer): Scorer & { seen: ScoringCase[] } {
  const seen: ScoringCase[] = [];
  return {
    modelVersion: inner.modelVersion,
    readsSentences: inner.readsSentences,
    seen,
    score: (cases) => {
      seen.push(...cases);
      return inner.score(cases);
    },
    close: () => inner.close(),
  };
}

/** A fresh engine with the catalogue loaded, as `runEval` and `cases export` set it up. */
async function harnessEngine(items: readonly Item[]) {
  const config = loadConfig({ overrides: SMALL });
  const engine = buildEngine(config);
  await engine.store.init();
  await engine.store.putItemMetadata(items.map((i) => ({ itemId: i.itemId, title: i.title, categories: i.categories })));
  return { config, engine: replayEngine(config, engine) };
}

describe('evaluation harness', () => {
  it('scores every system on the identical frozen cases, in both protocols, tagged by slice', async () => {
    const events = [...generateStream(WORLD)];
    const items = generateCatalogue(WORLD);
    const { config, engine } = await harnessEngine(items);
    const spies = [spy(popularityScorer()), spy(cooccurrenceScorer()), spy(createBaselineScorer())];
    const systems: HarnessSystem[] = spies.map((scorer, i) => ({ name: ['popularity', 'item-cf', 'baseline'][i]!, scorer }));
    // A stand-in teacher that answers in a fixed time and reverses the serving order.
    const ranker: TeacherRanker = {
      version: 'fake/1',
      rank: async (c, serving) => {
        await new Promise((r) => setTimeout(r, 5));
        const order = c.candidates.map((x, i) => ({ id: x.itemId, s: serving[i]! })).sort((a, b) => a.s - b.s);
        return { ranking: order.map((o) => o.id), failure: null, ms: 5, cutByBudget: false };
      },
    };
    const options = {
      ...DEFAULT_HARNESS_OPTIONS,
      streaming: { ...DEFAULT_HARNESS_OPTIONS.streaming, every: 3 },
      batchLists: 7,
      teacher: { ranker, budgetMs: 200, servingScorer: createBaselineScorer() },
    };
    const result = await runHarness(events, items, engine, systems, options);
    await engine.store.close();

    const streamingCases = Math.ceil((events.length - Math.floor(events.length * 0.2)) / 3);
    assert.equal(result.streaming.tags.length, streamingCases);
    assert.ok(result.paper.tags.length > 50, `${result.paper.tags.length} paper cases`);
    const total = result.streaming.tags.length + result.paper.tags.length;
    for (const s of spies) assert.equal(s.seen.length, total, `${s.modelVersion} scored every case once`);
    for (let i = 0; i < total; i++) {
      assert.ok(spies.every((s) => s.seen[i] === spies[0]!.seen[i]), `case ${i} is the same object for every system`);
    }
    for (const ranks of [...result.streaming.ranks, ...result.paper.ranks]) assert.ok(ranks.every((r) => Number.isInteger(r) && r >= -1));
    const paperCase = spies[0]!.seen.find((c) => c.candidates.length === 20);
    assert.ok(paperCase, 'paper cases hold 20 candidates');

    // The teacher ran on a sample within its budget; the sample slice scores everyone on those cases.
    const teacher = result.teacher!;
    assert.ok(teacher.runs.length >= 1 && teacher.runs.length < result.paper.tags.length, `${teacher.runs.length} teacher runs`);
    const report = buildReport(result, { dataset: { name: 'synthetic', items: items.length }, engineSeed: config.embeddings.seed, options, systems });
    assert.deepEqual(report.paper.map((s) => s.slice), [...SLICES, TEACHER_SLICE]);
    assert.deepEqual(report.streaming.map((s) => s.slice), [...SLICES]);
    const sample = report.paper.find((s) => s.slice === TEACHER_SLICE)!;
    assert.equal(sample.cases, teacher.runs.length);
    assert.deepEqual(sample.rows.map((r) => r.system), ['popularity', 'item-cf', 'baseline', 'teacher']);
    assert.ok(sample.rows.every((r) => r.cases === sample.cases));
    // Reversing the serving (baseline) order: the teacher's rank is the mirror of the baseline's.
    const baselineRanks = teacher.runs.map((r) => result.paper.ranks[2]![r.caseIndex]!);
    assert.deepEqual(teacher.runs.map((r) => r.rank), baselineRanks.map((r) => 19 - r));

    // Slice counts are the tags' counts, every row of a slice has that count, and metrics are consistent.
    for (const [protocol, cases] of [['paper', result.paper], ['streaming', result.streaming]] as const) {
      for (const s of report[protocol]) {
        if (s.slice === TEACHER_SLICE) continue;
        assert.equal(s.cases, cases.tags.filter((t) => (t.slices as readonly string[]).includes(s.slice)).length, `${protocol} ${s.slice}`);
        assert.ok(s.rows.every((r) => r.cases === s.cases));
      }
      assert.equal(report[protocol][0]!.cases, cases.tags.length, `${protocol}: all`);
    }
    for (const s of report.paper) for (const r of s.rows) assert.ok(r.hr1 <= r.hr3 && r.hr3 <= r.hr5 && Math.abs(r.avg - ((r.hr1 + r.hr3 + r.hr5) / 3) * 100) < 1e-9);
    for (const s of report.streaming) for (const r of s.rows) assert.ok(r.ndcg <= r.hitRate && r.hitRate <= 1);
    assert.ok(report.paper[0]!.rows[2]!.avg > report.paper[0]!.rows[0]!.avg, 'baseline beats popularity on this world');
    for (const slice of ['cold-user', 'cold-item', 'evolving']) {
      assert.ok(report.streaming.find((s) => s.slice === slice)!.cases > 0, `the synthetic world has ${slice} cases`);
    }
  });

  it('writes the table, JSON (data set, seeds, split, model versions) and an SVG plot', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'eval-'));
    try {
      const config = loadConfig({ overrides: SMALL });
      const world = { ...WORLD, events: 1_200 };
      const model = new ScriptedModel(politeScript(() => ['user_history', {}]));
      const lines: string[] = [];
      const report = await runEval(
        config,
        silentLogger(),
        { name: 'synthetic', events: [...generateStream(world)], items: generateCatalogue(world) },
        { star: [{ name: 'tiny', dir: FIXTURE_MODEL }], teacherBudgetS: 1, streamEvery: 10, seed: 3, model, progress: (l) => lines.push(l) },
      );
      assert.ok(lines.length > 0 && lines.at(-1)!.includes('1,200/1,200'), 'progress lines while it runs');
      assert.deepEqual(
        report.systems.map((s) => [s.name, s.version]),
        [['popularity', 'popularity'], ['item-cf', 'item-cf'], ['embeddings', 'embeddings'], ['baseline', createBaselineScorer().modelVersion], ['online', 'online-1'], ['STAR tiny', 'star-tiny-1']],
      );
      assert.equal(report.systems[5]!.source, FIXTURE_MODEL);
      assert.equal(report.teacher!.version, 'scripted/script-1');
      assert.ok(report.teacher!.runs >= 1 && report.teacher!.completed === report.teacher!.runs, 'the scripted teacher completes its runs');
      assert.deepEqual(report.seeds, { paper: 3, engine: config.embeddings.seed });
      assert.equal(report.split.streaming.every, 10);

      const files = await writeReport(report, dir);
      const json = JSON.parse(readFileSync(files[0]!, 'utf8')) as typeof report;
      assert.equal(json.dataset.name, 'synthetic');
      assert.equal(json.dataset.events, 1_200);
      assert.ok(json.split.paper.testFrom && json.split.paper.cases > 0);
      assert.ok(json.slices.definitions.evolving!.includes('total-variation'));
      assert.deepEqual(json.paper.at(-1)!.rows.map((r) => r.system).at(-1), 'teacher');
      const svg = readFileSync(files[2]!, 'utf8');
      assert.match(svg, /^<svg xmlns="http:\/\/www\.w3\.org\/2000\/svg"[\s\S]*<\/svg>\n$/);
      assert.equal((svg.match(/<svg /g) ?? []).length, 1);
      assert.equal((svg.match(/<g transform="translate\(0 \d+\)">/g) ?? []).length, 2, 'two charts stacked in one document');
      for (const name of ['STAR tiny', 'teacher', 'cold-user', 'evolving', TEACHER_SLICE]) assert.ok(svg.includes(name), name);
      assert.equal(reportSvg(report), svg);
      const table = reportTables(report);
      assert.match(table, /paper protocol/);
      assert.match(table, /streaming protocol/);
      assert.match(table, /teacher-sample\s+\d+\s+teacher/);
      assert.match(readFileSync(files[1]!, 'utf8'), /\| all \| \d+ \| STAR tiny \|/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('TeacherSampler', () => {
  it('calibrates on the first case, then spreads what the budget buys over the cases to come', () => {
    const sampler = new TeacherSampler(10_000, createRng(1));
    assert.ok(sampler.offer('e0', 1_000), 'the first case always runs');
    sampler.record(1_000);
    // 9 s left at 1 s a run: about 9 of the next 900 cases.
    let taken = 0;
    for (let i = 1; i < 901; i++) if (sampler.offer(`e${i}`, 1_000 - i)) taken++;
    assert.ok(taken >= 3 && taken <= 20, `${taken} offers taken`);
    sampler.record(8_600);
    assert.equal(sampler.offer('late', 10), false, 'less than half a mean run left');
  });
});

describe('paper cases', () => {
  it('are exactly the test cases `starstream cases export` writes for the same data, seed and split', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'eval-cases-'));
    try {
      const world = { ...WORLD, events: 1_500 };
      const data = { items: generateCatalogue(world), interactions: [...generateStream(world)] };
      const out = join(dir, 'cases.jsonl');
      await casesExport(loadConfig({ overrides: SMALL }), { dataset: data, out, splits: ['test'], seed: 4, progress: null });
      const exported = readFileSync(out, 'utf8').trim().split('\n').map((l) => JSON.parse(l) as { itemId: string; case: ScoringCase });

      const { engine } = await harnessEngine(data.items);
      const seen = spy(popularityScorer());
      const options = { ...DEFAULT_HARNESS_OPTIONS, paper: { ...DEFAULT_HARNESS_OPTIONS.paper, seed: 4 }, streaming: { ...DEFAULT_HARNESS_OPTIONS.streaming, every: 2 } };
      const result = await runHarness(data.interactions, data.items, engine, [{ name: 'popularity', scorer: seen }], options);
      await engine.store.close();
      const paperCases = seen.seen.filter((c) => c.candidates.length === 20);
      assert.equal(result.paper.tags.length, exported.length);
      assert.deepEqual(
        paperCases.map((c) => [c.eventId, c.candidates.map((x) => [x.itemId, x.features.cooccurrence, x.sentences.join('|')])]),
        exported.map((r) => [r.case.eventId, r.case.candidates.map((x) => [x.itemId, x.features.cooccurrence, x.sentences.join('|')])]),
      );
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
