import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { Registry } from 'prom-client';
import { NO_MALFORMED, produceInteractions } from '../../src/cli/produce.ts';
import { loadConfig } from '../../src/config/load.ts';
import { generateStream } from '../../src/data/synthetic.ts';
import type { Interaction } from '../../src/domain/events.ts';
import type { LabelledTrajectory, TeacherCase, Trajectory } from '../../src/domain/teacher.ts';
import { createEmbeddedEventLog } from '../../src/eventlog/embedded/log.ts';
import { silentLogger } from '../../src/logging/logger.ts';
import { buildPipeline } from '../../src/main.ts';
import { TrajectoryPairing } from '../../src/teacher/dataset/pairing.ts';
import { DatasetWriter, type Manifest } from '../../src/teacher/dataset/writer.ts';
import { DurableOutcomeJoin } from '../../src/teacher/outcomes/durable.ts';
import { OutcomeWorker } from '../../src/teacher/outcomes/worker.ts';
import { eventually, uniqueName } from '../helpers.ts';

/**
 * The side stream end to end on the embedded default: a replay of a generated stream goes through the
 * pipeline with sampling on; cases land on the teacher-cases topic of the in-process log; a scripted stand-in
 * teacher (the real MARS agents have their own suites) ranks each case; the outcome join labels the cases
 * from the interactions topic; the pairing and the dataset writer export labelled trajectories. Every label is
 * checked against the generated stream, and every case against what was knowable at its event.
 */

const N = 1_500;
const DAY = 86_400_000;

describe('side stream on the embedded default', () => {
  const dirs: string[] = [];
  after(async () => {
    for (const d of dirs) await rm(d, { recursive: true, force: true });
  });

  it('samples cases into the teacher-cases topic, labels them by outcome and exports a data set', async () => {
    const dataDir = await mkdtemp(join(tmpdir(), 'starstream-side-'));
    dirs.push(dataDir);
    const config = loadConfig({
      overrides: {
        store: { dimension: 8 },
        ranking: { topK: 5 },
        candidates: { fromEmbedding: 10, fromCooccurrence: 10, fromPopular: 10, maxCandidates: 30 },
        evidence: { neighbours: 5 },
        pipeline: { groupId: uniqueName('side'), maxBatchRecords: 200 },
        eventLog: { topics: { partitions: 3 } },
        // The generated stream spans ~30 days at ~1 event per 30 min: a budget of ~2 cases per day.
        sampling: {
          enabled: true,
          casesPerMinute: 2 / (24 * 60),
          burstCases: 8,
          candidatesPerCase: 8,
          rateWindowMs: DAY,
          outcomes: { horizonMs: 3 * DAY, allowedLatenessMs: DAY, maxBufferedPerUser: 1_000, dataDir },
          dataset: { dir: join(dataDir, 'dataset'), keep: 'topk', keepTopK: 3, maxRecordsPerFile: 10 },
        },
      },
    });
    const logger = silentLogger();
    const log = createEmbeddedEventLog(config.eventLog, logger);
    const registry = new Registry();
    const pipeline = await buildPipeline(config, { logger, log, registry });
    const { topics, framing, engine } = pipeline;

    // Export side: dataset writer ← pairing ← outcome join ← outcome worker.
    const s = config.sampling;
    const writer = await DatasetWriter.open({ dir: s.dataset.dir, maxRecordsPerFile: s.dataset.maxRecordsPerFile, filter: { keep: s.dataset.keep, k: s.dataset.keepTopK } });
    const pairing = await TrajectoryPairing.open({ dataDir, compactAfterEntries: s.outcomes.compactAfterEntries, maxPending: s.dataset.maxPendingPairs, sink: (r) => writer.write(r) });
    const resolved = new Set<string>();
    const unjoinable: string[] = [];
    const outcomes = await DurableOutcomeJoin.open({
      ...s.outcomes,
      sink: (r) => {
        for (const l of r.labelled) resolved.add(l.case.caseId);
        for (const c of r.unjoinable) unjoinable.push(c.caseId);
        return pairing.addOutcomes(r);
      },
    });
    const worker = new OutcomeWorker({ log, join: outcomes, codecs: engine.codecs, framing, topics, groupId: uniqueName('outcomes'), maxBatchRecords: 500, logger });

    // The scripted teacher: ranks a case's candidates by co-occurrence, then popularity (a fixed rule).
    const cases: TeacherCase[] = [];
    const teacher = log.consumer({ groupId: uniqueName('teacher'), topics: [topics.teacherCases], fromBeginning: true, maxBatchRecords: 50 });
    const teaching = teacher.run(async (batch) => {
      const trajectories: Trajectory[] = [];
      for (const r of batch.records) {
        const c = await framing.decode(engine.codecs.teacherCase, r.value, r.headers);
        assert.equal(r.key?.toString('utf8'), c.user.userId, 'cases are keyed by user');
        cases.push(c);
        trajectories.push(scriptedTeacher(c));
      }
      await pairing.addTrajectories(trajectories);
    });

    await pipeline.runner.start();
    worker.start();
    const events = [...generateStream({ events: N, users: 100, items: 200, seed: 3 })];
    assert.equal(await produceInteractions(log, topics.interactions, events, engine.codecs, framing, NO_MALFORMED), N);
    await eventually(() => pipeline.runner.processedRecords >= N, 120_000);
    const lastAt = Math.max(...events.map((e) => e.timestampMs));
    // Every case is resolved or waits for an interaction the finite replay will never bring.
    const sampledTotal = async (): Promise<number> => (await registry.getSingleMetric('starstream_cases_sampled_total')!.get()).values.reduce((a, v) => a + v.value, 0);
    const total = await sampledTotal();
    await eventually(() => worker.interactionsRead >= N && worker.casesRead >= total && cases.length >= total, 60_000);
    // The replay is finite: what is still pending can never be labelled by a later interaction.
    await worker.stop();
    await outcomes.advance(Number.POSITIVE_INFINITY);
    await teacher.stop();
    await teaching;
    await pipeline.runner.stop();
    assert.ok(cases.every((c) => resolved.has(c.caseId)));
    assert.deepEqual(unjoinable, [], 'with the buffer covering the replay, every case is joined exactly');
    assert.deepEqual(pairing.pending, { trajectories: 0, outcomes: 0 });
    await pairing.close();
    await writer.close();
    await log.close();

    // Cases: sampled by every strategy the stream offers, within budget, counted by reason.
    const sampled = await registry.getSingleMetric('starstream_cases_sampled_total')!.get();
    const byReason: Record<string, number> = Object.fromEntries(sampled.values.map((v) => [String(v.labels.reason), v.value]));
    assert.equal(await sampledTotal(), cases.length);
    for (const c of cases) assert.ok((byReason[c.reason] ?? 0) > 0, `reason ${c.reason} counted`);
    const spanDays = (lastAt - events[0]!.timestampMs) / DAY;
    assert.ok(cases.length >= 10 && cases.length <= 8 + 2 * spanDays + 1, `${cases.length} cases over ${spanDays.toFixed(1)} days`);
    assert.ok(Object.keys(byReason).length >= 2, `reasons ${JSON.stringify(byReason)}`);

    // Nothing from after the event: history, counts and the event itself agree with the stream up to atMs.
    const byEvent = new Map(events.map((e, i) => [e.eventId, i]));
    for (const c of cases) {
      const index = byEvent.get(c.eventId)!;
      const event = events[index]!;
      assert.equal(c.atMs, event.timestampMs);
      assert.equal(c.user.userId, event.userId);
      const upTo = events.slice(0, index + 1).filter((e) => e.userId === event.userId);
      assert.equal(c.user.interactionCount, upTo.length);
      assert.equal(c.user.recentItems[0]?.itemId, event.itemId, 'the triggering item is the most recent');
      for (const r of c.user.recentItems) assert.ok(r.atMs <= c.atMs);
      assert.ok(c.candidates.length > 0 && c.candidates.length <= 8);
      assert.equal(c.studentScores.length, c.candidates.length);
      for (let i = 1; i < c.studentScores.length; i++) assert.ok(c.studentScores[i - 1]! >= c.studentScores[i]!);
      assert.ok(c.candidates.every((e) => e.sentences.length > 0), 'CST sentences rendered for every case candidate');
    }

    // The data set: every case exactly once, labelled as the stream says.
    const manifest = JSON.parse(await readFile(join(s.dataset.dir, 'manifest.json'), 'utf8')) as Manifest;
    const records: LabelledTrajectory[] = [];
    for (const f of manifest.files) {
      const text = await readFile(join(s.dataset.dir, f.path), 'utf8');
      records.push(...text.trim().split('\n').map((l) => JSON.parse(l) as LabelledTrajectory));
    }
    assert.equal(manifest.counts.kept + manifest.counts.rejected, cases.length);
    assert.deepEqual(new Set(records.map((r) => r.case.caseId)), new Set(cases.map((c) => c.caseId)));
    assert.ok(manifest.files.length >= 2, 'rotated');
    let observed = 0;
    for (const r of records) {
      const truth = nextOf(events, r.case);
      if (truth && truth.timestampMs - r.case.atMs <= 3 * DAY) {
        observed++;
        assert.equal(r.outcome.status, 'observed');
        if (r.outcome.status !== 'observed') continue;
        assert.equal(r.outcome.nextItemId, truth.itemId);
        assert.equal(r.outcome.observedAtMs, truth.timestampMs);
        const studentIndex = r.case.candidates.findIndex((e) => e.itemId === truth.itemId);
        assert.equal(r.outcome.studentRank, studentIndex < 0 ? null : studentIndex + 1);
        const teacherIndex = r.trajectory.ranking.indexOf(truth.itemId);
        assert.equal(r.teacherRank, teacherIndex < 0 ? null : teacherIndex + 1);
      } else {
        assert.equal(r.outcome.status, 'expired', `case ${r.case.caseId}`);
        assert.equal(r.teacherRank, null);
      }
    }
    assert.ok(observed > 0, 'some cases were labelled by a next interaction');
    assert.equal(manifest.counts.outcomes.observed, observed);
  });
});

/** The user's first interaction strictly after the case, in stream order. */
function nextOf(events: readonly Interaction[], c: TeacherCase): Interaction | undefined {
  return events.find((e) => e.userId === c.user.userId && e.timestampMs > c.atMs);
}

function scriptedTeacher(c: TeacherCase): Trajectory {
  const ranking = [...c.candidates]
    .sort((a, b) => b.features.cooccurrence - a.features.cooccurrence || b.features.popularity - a.features.popularity)
    .map((e) => e.itemId);
  return {
    caseId: c.caseId,
    backend: 'scripted',
    model: 'co-occurrence-then-popularity',
    startedAtMs: c.atMs,
    ms: 1,
    steps: [{ kind: 'recommend', agent: 'ranker', ranking, justification: 'scripted stand-in' }],
    turns: [],
    ranking,
    status: 'completed',
    failure: null,
    serialized: `<recommend>${ranking.join(', ')}</recommend>`,
  };
}
