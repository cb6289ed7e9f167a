import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { Writable } from 'node:stream';
import { pino } from 'pino';
import { OnnxStarScorer } from '../../src/star/onnx/scorer.ts';
import { loadPromptSpec } from '../../src/star/prompt/spec.ts';
import { readManifest, modelFiles } from '../../src/star/registry/manifest.ts';
import { checkParity, readParity } from '../../src/star/registry/parity.ts';
import { FIXTURE_MODEL } from './helpers.ts';

/** Scores must match the trainer's onnxruntime scores (parity.jsonl) to this absolute tolerance. */
const PARITY_TOLERANCE = 1e-4;

describe('ONNX STAR scorer (fixture model)', () => {
  const spec = loadPromptSpec();
  const manifest = readManifest(FIXTURE_MODEL);
  const parity = readParity(modelFiles(FIXTURE_MODEL).parity);
  let scorer: OnnxStarScorer;

  before(async () => {
    scorer = await OnnxStarScorer.load(FIXTURE_MODEL, manifest, spec, { maxWaitMs: 2, maxBatchCandidates: 64 });
  });
  after(() => scorer.close());

  it(`reproduces parity.jsonl within ${PARITY_TOLERANCE}`, async () => {
    const report = await checkParity(scorer, parity, PARITY_TOLERANCE);
    assert.ok(report.candidates >= 40);
    assert.ok(report.maxAbsDiff <= PARITY_TOLERANCE);
  });

  it('reads sentences, names its version, runs on the CPU provider here', () => {
    assert.equal(scorer.readsSentences, true);
    assert.equal(scorer.modelVersion, `${manifest.name}-${manifest.version}`);
    assert.equal(scorer.executionProvider, 'cpu');
  });

  it('micro-batched concurrent calls give the same scores as one call each', async () => {
    const cases = parity.map((p) => p.case);
    const alone = await Promise.all(cases.map((c) => scorer.scoreNow([c])));
    const before = scorer.batchStats.batches;
    const merged = await Promise.all(cases.map((c) => scorer.score([c])));
    assert.ok(scorer.batchStats.batches - before < cases.length, 'concurrent lists shared forward passes');
    merged.forEach((m, i) => m[0]!.forEach((s, j) => assert.ok(Math.abs(s - alone[i]![0]![j]!) < 1e-5)));
  });

  it('an empty list scores to an empty array', async () => {
    const [scores] = await scorer.score([{ ...parity[0]!.case, candidates: [] }]);
    assert.equal(scores!.length, 0);
  });

  it('asked for CUDA on a host without it: logs why and serves on the CPU', async () => {
    const lines: string[] = [];
    const logger = pino({ level: 'info' }, new Writable({ write: (chunk, _e, cb) => (lines.push(String(chunk)), cb()) }));
    const s = await OnnxStarScorer.load(FIXTURE_MODEL, manifest, spec, { executionProvider: 'cuda', logger });
    try {
      if (s.executionProvider === 'cuda') return; // a GPU host with the CUDA provider installed
      assert.equal(s.executionProvider, 'cpu');
      assert.ok(lines.some((l) => l.includes('STAR_CUDA_UNAVAILABLE')));
      assert.ok(lines.some((l) => l.includes('"executionProvider":"cpu"')));
    } finally {
      await s.close();
    }
  });
});
