import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { distill } from '../../src/cli/distill.ts';
import { distillCommand, runPythonTrainer } from '../../src/distill/trainer.ts';
import { loadConfig } from '../../src/config/load.ts';
import { ConfigError } from '../../src/errors/index.ts';
import { silentLogger } from '../../src/logging/logger.ts';
import { tempRegistry } from '../star/helpers.ts';
import { breakParity, fixtureTrainer, labelled, oracle, tempDir, verifiedOracles, writeDataset } from './helpers.ts';

test('the trainer command line is the Python distill subcommand with absolute paths, and a missing trainer says how to install it', async () => {
  const { python, args } = distillCommand({
    trajectories: 'in/t.jsonl',
    cases: null,
    out: 'm',
    version: 'v1',
    report: 'r.json',
    preset: 'tiny',
    set: { epochs: 2, tokenizer: null },
  });
  assert.match(python, /train\/\.venv\/bin\/python$/);
  assert.deepEqual(args.slice(0, 3), ['-m', 'starstream_train', 'distill']);
  assert.equal(args[args.indexOf('--out') + 1], join(process.cwd(), 'm'));
  assert.equal(args[args.indexOf('--trajectories') + 1], join(process.cwd(), 'in/t.jsonl'));
  assert.ok(!args.includes('--cases'));
  assert.deepEqual(args.slice(args.indexOf('--set')), ['--set', 'epochs=2', 'tokenizer=none']);
  await assert.rejects(
    runPythonTrainer({ trajectories: null, cases: null, out: 'm', version: 'v', report: 'r', preset: 'tiny', set: {}, python: '/nonexistent/python' }, () => undefined),
    /train\/install\.sh/,
  );
});

test('starstream distill reads config.distill, exits 1 on a refused challenger and needs a registry', async () => {
  const t = tempDir('distill-cli-');
  const registry = tempRegistry(['champion-1']);
  const write = process.stdout.write;
  const out: string[] = [];
  try {
    await writeDataset(join(t.dir, 'dataset'), Array.from({ length: 40 }, (_, i) => labelled(i)));
    const config = loadConfig({
      env: {},
      overrides: {
        ranking: { modelDir: registry.dir, parityTolerance: 1e-4 },
        sampling: { dataset: { dir: join(t.dir, 'dataset') } },
        distill: { stateDir: join(t.dir, 'state'), minHoldoutCases: 3, holdoutShare: 0.25 },
      },
    });
    const deps = {
      train: fixtureTrainer([], breakParity),
      loadModel: verifiedOracles(registry.dir, () => 'best' as const),
      baseline: () => oracle('baseline-test', 'order'),
    };
    process.stdout.write = ((chunk: string) => out.push(chunk) > 0) as typeof process.stdout.write;
    const code = await distill(config, silentLogger(), {}, deps);
    process.stdout.write = write;
    assert.equal(code, 1);
    assert.match(out.join(''), /^distill \S+: refused \(MODEL_PARITY_MISMATCH: /);
    assert.equal(readFileSync(join(registry.dir, 'CURRENT'), 'utf8').trim(), 'champion-1');

    const noRegistry = loadConfig({ env: {}, overrides: { distill: { stateDir: join(t.dir, 'state') } } });
    await assert.rejects(distill(noRegistry, silentLogger()), ConfigError);
  } finally {
    process.stdout.write = write;
    registry.cleanup();
    t.cleanup();
  }
});
