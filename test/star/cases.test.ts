import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { after, describe, it } from 'node:test';
import { casesExport, casesExportCommand, type CaseRecord } from '../../src/cli/cases.ts';
import { silentLogger } from '../../src/logging/logger.ts';
import { loadConfig } from '../../src/config/load.ts';
import { generateCatalogue, generateStream } from '../../src/data/synthetic.ts';
import type { LabelledTrajectory } from '../../src/domain/teacher.ts';
import { parseScoringCase } from '../../src/star/prompt/case-schema.ts';
import { politeScript, ScriptedModel } from '../teacher/scripted-llm.ts';

const world = { users: 60, items: 150, events: 3_000, seed: 4 };
const dataset = { items: generateCatalogue(world), interactions: [...generateStream(world)] };
const config = loadConfig({ overrides: { store: { dimension: 8 } } });
const dir = mkdtempSync(join(tmpdir(), 'cases-'));
after(() => rmSync(dir, { recursive: true, force: true }));

function read(file: string): CaseRecord[] {
  return readFileSync(file, 'utf8')
    .trim()
    .split('\n')
    .map((l) => {
      const r = JSON.parse(l) as CaseRecord;
      return { ...r, case: parseScoringCase(r.case) };
    });
}

describe('cases export', () => {
  it('writes the 20-candidate protocol: true item + unseen negatives, evidence for each, split by time', async () => {
    const out = join(dir, 'a.jsonl');
    const lines: string[] = [];
    const report = await casesExport(config, {
      dataset,
      out,
      trainEvery: 3,
      progress: new Writable({ write: (c, _e, cb) => (lines.push(String(c)), cb()) }),
      progressEveryMs: 0,
    });
    const records = read(out);
    assert.equal(records.length, report.cases.train + report.cases.test);
    assert.ok(report.cases.train > 100 && report.cases.test > 20, JSON.stringify(report.cases));
    assert.ok(lines.some((l) => /^cases export: events [\d,]+\/[\d,]+ .*\/s {2}ETA .* cases/.test(l)), 'progress lines with rate and ETA');

    const consumed = new Map<string, Set<string>>();
    const byId = new Map(dataset.interactions.map((e, t) => [e.eventId, { e, t }]));
    const history = (userId: string, before: number): Set<string> =>
      new Set(dataset.interactions.slice(0, before).filter((e) => e.userId === userId).map((e) => e.itemId));
    const labels = new Set<number>();
    for (const r of records) {
      const { e, t } = byId.get(r.case.eventId)!;
      const ids = r.case.candidates.map((c) => c.itemId);
      assert.equal(ids.length, 20);
      assert.equal(new Set(ids).size, 20, 'candidates are distinct');
      assert.equal(ids[r.label], e.itemId);
      assert.equal(r.itemId, e.itemId);
      labels.add(r.label);
      const seen = consumed.get(`${e.userId}@${t}`) ?? history(e.userId, t);
      for (const id of ids) if (id !== e.itemId) assert.ok(!seen.has(id), `negative ${id} was already consumed by ${e.userId}`);
      assert.equal(r.split, e.timestampMs < report.splitAtMs ? 'train' : 'test');
      for (const c of r.case.candidates) assert.ok(c.sentences.length > 0, 'CST sentences are rendered for every candidate');
      assert.equal(r.case.user.userId, e.userId);
    }
    assert.ok(labels.size > 10, 'the true item sits at random positions');
    const meta = JSON.parse(readFileSync(`${out}.meta.json`, 'utf8')) as { cases: { train: number } };
    assert.equal(meta.cases.train, report.cases.train);
  });

  it('is deterministic for a seed; the limit, the candidate count and the popularity sampler apply', async () => {
    const a = join(dir, 'b1.jsonl');
    const b = join(dir, 'b2.jsonl');
    const options = { dataset, candidates: 8, negativeSampler: 'popularity' as const, limit: 120, seed: 9, progress: null };
    await casesExport(config, { ...options, out: a });
    await casesExport(config, { ...options, out: b });
    assert.equal(readFileSync(a, 'utf8'), readFileSync(b, 'utf8'));
    const records = read(a);
    assert.equal(records.length, 120);
    assert.ok(records.every((r) => r.case.candidates.length === 8));
  });

  it('runs the teacher on a sample of train cases only and labels each run with the true item', async () => {
    const written: LabelledTrajectory[] = [];
    const model = new ScriptedModel(politeScript(() => ['user_history', {}]));
    const out = join(dir, 't.jsonl');
    const report = await casesExport(config, {
      dataset,
      out,
      progress: null,
      teacher: { model, budgetMs: 1_500, write: async (r) => void written.push(r) },
    });
    const byEvent = new Map(read(out).map((r) => [r.case.eventId, r]));
    assert.ok(written.length >= 3, `${written.length} teacher runs within the budget`);
    assert.deepEqual(report.teacher, { version: 'scripted/script-1', runs: written.length, completed: written.length, cutByBudget: 0, seconds: report.teacher!.seconds });
    const times = written.map((w) => w.case.atMs);
    assert.ok(times[times.length - 1]! - times[0]! > 0.3 * (report.splitAtMs - times[0]!), 'the sample spreads over the train window');
    for (const w of written) {
      const record = byEvent.get(w.case.eventId)!;
      assert.equal(record.split, 'train', 'test cases never reach the teacher');
      assert.equal(w.trajectory.caseId, w.case.caseId);
      assert.deepEqual(new Set(w.case.candidates.map((c) => c.itemId)), new Set(record.case.candidates.map((c) => c.itemId)));
      // The serving (baseline) order, best first, as the pipeline sends a case.
      assert.ok(w.case.studentScores.every((s, i) => i === 0 || s <= w.case.studentScores[i - 1]!));
      assert.equal(w.outcome.status, 'observed');
      if (w.outcome.status !== 'observed') continue;
      assert.equal(w.outcome.nextItemId, record.itemId);
      assert.equal(w.outcome.studentRank, w.case.candidates.findIndex((c) => c.itemId === record.itemId) + 1);
      // The scripted ranker reverses the list, so the true item's teacher rank mirrors its serving rank.
      assert.equal(w.teacherRank, 21 - w.outcome.studentRank!);
    }
  });

  it('refuses options that make no protocol', async () => {
    await assert.rejects(casesExport(config, { dataset, out: join(dir, 'x.jsonl'), candidates: 1 }), /candidates/);
    await assert.rejects(casesExport(config, { dataset, out: join(dir, 'x.jsonl'), trainShare: 1 }), /trainShare/);
    const logger = silentLogger();
    await assert.rejects(casesExportCommand(config, logger, { dataset, out: join(dir, 'x.jsonl'), teacherBudgetS: 10 }), /--teacher-budget-s and --trajectories go together/);
    await assert.rejects(casesExportCommand(config, logger, { dataset, out: join(dir, 'x.jsonl'), trajectories: dir }), /go together/);
  });
});
