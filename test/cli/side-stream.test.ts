import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { demo } from '../../src/cli/demo.ts';
import { loadConfig } from '../../src/config/load.ts';
import type { LabelledTrajectory } from '../../src/domain/teacher.ts';
import { silentLogger } from '../../src/logging/logger.ts';
import { ScriptedModel, politeScript } from '../teacher/scripted-llm.ts';

const DAY = 86_400_000;

/**
 * `demo --teacher` on the embedded default, through the production wiring (buildTeacherWorker, buildLabeller):
 * the pipeline samples cases, the MARS protocol answers each one (a scripted model stands in for the LLM;
 * the real model's run is in test/teacher/llm), outcomes label them, and the data set holds every case once.
 */
describe('demo --teacher: the side stream in one process', () => {
  const dirs: string[] = [];
  after(async () => {
    for (const d of dirs) await rm(d, { recursive: true, force: true });
  });

  it('samples cases, runs the teacher on each, labels them and exports the data set', async () => {
    const dataDir = await mkdtemp(join(tmpdir(), 'starstream-demo-teacher-'));
    dirs.push(dataDir);
    const config = loadConfig({
      overrides: {
        store: { dimension: 8 },
        ops: { port: 0 },
        sampling: {
          enabled: true,
          casesPerMinute: 2 / (24 * 60),
          burstCases: 6,
          candidatesPerCase: 8,
          rateWindowMs: DAY,
          outcomes: { horizonMs: 3 * DAY, allowedLatenessMs: DAY, dataDir },
          dataset: { dir: join(dataDir, 'dataset'), keep: 'topk', keepTopK: 8 },
        },
      },
    });
    const model = new ScriptedModel(politeScript(() => ['user_history', {}]));
    const summary = await demo(config, silentLogger(), {
      events: 1_500,
      users: 100,
      items: 200,
      seed: 3,
      out: join(dataDir, 'recommendations.jsonl'),
      malformed: { garbageEvery: 0, nonFiniteEvery: 0 },
      teacher: { model, drainTimeoutMs: 60_000 },
    });
    const side = summary.sideStream;
    assert.ok(side, 'a side-stream summary');
    assert.ok(side.casesSampled >= 5, `${side.casesSampled} cases sampled`);
    assert.equal(side.trajectories, side.casesSampled, 'one trajectory per case');
    assert.equal(side.backend, 'scripted');
    assert.ok(model.calls.some((c) => c.agent === 'ranker'), 'the protocol ran to the ranker');
    const counts = side.manifest.counts;
    assert.equal(counts.kept + counts.rejected, side.casesSampled, JSON.stringify(counts));
    assert.ok(counts.outcomes.observed > 0, 'some cases were labelled by a next interaction');

    const records: LabelledTrajectory[] = [];
    for (const f of side.manifest.files) {
      const text = await readFile(join(side.dataset, f.path), 'utf8');
      records.push(...text.trim().split('\n').map((l) => JSON.parse(l) as LabelledTrajectory));
    }
    assert.equal(new Set(records.map((r) => r.case.caseId)).size, side.casesSampled);
    // The scripted team calls tools on its first cases (its turn counter spans the run), against the live store.
    const withTools = records.filter((r) => r.trajectory.steps.some((s) => s.kind === 'tool_call'));
    assert.ok(withTools.length > 0, 'a tool ran against the live store');
    for (const r of withTools) {
      const responses = r.trajectory.steps.filter((s) => s.kind === 'tool_response');
      assert.ok(responses.length > 0 && responses.every((s) => s.kind === 'tool_response' && s.text.length > 0));
    }
    for (const r of records) {
      assert.equal(r.trajectory.status, 'completed');
      assert.match(r.trajectory.serialized, /<plan>[\s\S]*<recommend>/);
    }
  });
});
