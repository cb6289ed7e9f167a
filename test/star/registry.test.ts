import assert from 'node:assert/strict';
import { appendFileSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { StarModelError } from '../../src/star/registry/errors.ts';
import { readParity } from '../../src/star/registry/parity.ts';
import { StarRegistry } from '../../src/star/registry/registry.ts';
import { eventually } from '../helpers.ts';
import { copyModel, editManifest, FIXTURE_MODEL, point, registryOptions, tempRegistry } from './helpers.ts';

const parityCases = readParity(join(FIXTURE_MODEL, 'parity.jsonl')).map((p) => p.case);

async function withRegistry(
  versions: string[],
  fn: (dir: string, registry: StarRegistry, refused: string[]) => Promise<void>,
  extra: Parameters<typeof registryOptions>[1] = {},
): Promise<void> {
  const { dir, cleanup } = tempRegistry(versions);
  const refused: string[] = [];
  const registry = await StarRegistry.open(registryOptions(dir, { onRefused: (code, version) => refused.push(`${code} ${version}`), ...extra }));
  try {
    await fn(dir, registry, refused);
  } finally {
    await registry.close();
    cleanup();
  }
}

/** A model that should be refused: the registry keeps serving `v1` and counts the refusal with `code`. */
async function assertRefused(prepare: (modelDir: string) => void, code: string): Promise<void> {
  await withRegistry(['v1'], async (dir, registry, refused) => {
    const bad = copyModel(dir, 'v2');
    prepare(bad);
    point(dir, 'v2');
    const result = await registry.refresh();
    assert.equal(result.status, 'refused');
    assert.equal(result.status === 'refused' && result.code, code);
    assert.deepEqual(refused, [`${code} v2`]);
    assert.equal(registry.version, 'star-v1', 'the previous model keeps serving');
    const [scores] = await registry.current().score([parityCases[0]!]);
    assert.equal(scores!.length, parityCases[0]!.candidates.length);
    // Refused once: not reloaded on every poll while its files stay the same.
    assert.equal((await registry.refresh()).status, 'refused');
    assert.equal(refused.length, 1);
  });
}

describe('STAR model registry', () => {
  it('serves the version CURRENT names and swaps to a new one after its parity check', async () => {
    await withRegistry(['v1', 'v2'], async (dir, registry) => {
      assert.equal(registry.version, 'star-v1');
      assert.equal(registry.executionProvider, 'cpu');
      assert.equal((await registry.refresh()).status, 'unchanged');
      point(dir, 'v2');
      const result = await registry.refresh();
      assert.equal(result.status, 'swapped');
      assert.ok(result.status === 'swapped' && result.parity.maxAbsDiff <= 1e-4);
      assert.equal(registry.current().modelVersion, 'star-v2');
    });
  });

  it('notices a new CURRENT by polling', async () => {
    const swapped: string[] = [];
    await withRegistry(
      ['v1', 'v2'],
      async (dir, registry) => {
        point(dir, 'v2');
        await eventually(() => registry.version === 'star-v2');
        assert.deepEqual(swapped, ['star-v1', 'star-v2']);
      },
      { pollMs: 20, onSwapped: (v) => swapped.push(v) },
    );
  });

  it('refuses a corrupted star.onnx (MODEL_LOAD_FAILED)', () =>
    assertRefused((m) => writeFileSync(join(m, 'star.onnx'), Buffer.from('not an onnx model')), 'MODEL_LOAD_FAILED'));

  it('refuses a model trained on another prompt template (MODEL_TEMPLATE_MISMATCH)', () =>
    assertRefused((m) => editManifest(m, (x) => ({ ...x, promptTemplateVersion: 'prompt-0' })), 'MODEL_TEMPLATE_MISMATCH'));

  it('refuses a model trained on other CST templates (MODEL_TEMPLATE_MISMATCH)', () =>
    assertRefused((m) => editManifest(m, (x) => ({ ...x, cstTemplateVersion: 'cst-0' })), 'MODEL_TEMPLATE_MISMATCH'));

  it('refuses a model whose scores disagree with its parity cases (MODEL_PARITY_MISMATCH)', () =>
    assertRefused((m) => {
      const lines = readFileSync(join(m, 'parity.jsonl'), 'utf8').trim().split('\n');
      const first = JSON.parse(lines[0]!) as { scores: number[] };
      first.scores[0] = first.scores[0]! + 0.5;
      lines[0] = JSON.stringify(first);
      writeFileSync(join(m, 'parity.jsonl'), `${lines.join('\n')}\n`);
    }, 'MODEL_PARITY_MISMATCH'));

  it('refuses a model whose parity texts were rendered differently (MODEL_PARITY_MISMATCH)', () =>
    assertRefused((m) => {
      const lines = readFileSync(join(m, 'parity.jsonl'), 'utf8').trim().split('\n');
      const first = JSON.parse(lines[0]!) as { texts: string[] };
      first.texts[0] = `${first.texts[0]} drift`;
      lines[0] = JSON.stringify(first);
      writeFileSync(join(m, 'parity.jsonl'), `${lines.join('\n')}\n`);
    }, 'MODEL_PARITY_MISMATCH'));

  it('refuses an incomplete directory and an invalid manifest (MODEL_INVALID)', async () => {
    await assertRefused((m) => rmSync(join(m, 'tokenizer.json')), 'MODEL_INVALID');
    await assertRefused((m) => editManifest(m, (x) => ({ ...x, maxLength: 'long' })), 'MODEL_INVALID');
    await assertRefused((m) => appendFileSync(join(m, 'parity.jsonl'), '{"case": 1}\n'), 'MODEL_INVALID');
  });

  it('refuses a CURRENT that names no version directory, and throws when nothing serves yet', async () => {
    await withRegistry(['v1'], async (dir, registry, refused) => {
      writeFileSync(join(dir, 'CURRENT'), '../etc\n');
      assert.equal((await registry.refresh()).status, 'refused');
      assert.match(refused[0]!, /^MODEL_REGISTRY_INVALID/);
      assert.equal(registry.version, 'star-v1');
    });
    const { dir, cleanup } = tempRegistry(['v1']);
    try {
      editManifest(join(dir, 'v1'), (x) => ({ ...x, promptTemplateVersion: 'prompt-0' }));
      await assert.rejects(StarRegistry.open(registryOptions(dir)), (err: unknown) => err instanceof StarModelError && err.code === 'MODEL_TEMPLATE_MISMATCH');
    } finally {
      cleanup();
    }
  });

  it('serves a single model directory as is', async () => {
    const registry = await StarRegistry.open(registryOptions(FIXTURE_MODEL, { pollMs: 10 }));
    try {
      assert.equal(registry.version, 'star-tiny-1');
      assert.equal((await registry.refresh()).status, 'unchanged');
    } finally {
      await registry.close();
    }
  });

  it('hot reload under load: swapping back and forth while many score() calls are in flight fails none', async () => {
    await withRegistry(
      ['v1', 'v2'],
      async (dir, registry) => {
        let stop = false;
        const seen = new Set<string>();
        let done = 0;
        const clients = Array.from({ length: 16 }, async (_, k) => {
          while (!stop) {
            const scorer = registry.current(); // once per case, as the pipeline does
            const c = parityCases[(done + k) % parityCases.length]!;
            // Some time between taking the model and using it, as candidates and evidence take in the pipeline.
            await new Promise((r) => setImmediate(r));
            const [scores] = await scorer.score([c]);
            assert.equal(scores!.length, c.candidates.length);
            assert.ok(scores!.every(Number.isFinite));
            seen.add(scorer.modelVersion);
            done++;
          }
        });
        for (let swap = 0; swap < 6; swap++) {
          // Lists are being scored across every swap, however the machine's load splits the time between the
          // clients and the refresh (a count over the whole run depended on that split).
          const before = done;
          await eventually(() => done >= before + 10);
          point(dir, swap % 2 === 0 ? 'v2' : 'v1');
          const result = await registry.refresh();
          assert.equal(result.status, 'swapped');
        }
        stop = true;
        await Promise.all(clients);
        assert.deepEqual([...seen].sort(), ['star-v1', 'star-v2']);
      },
      // The registry closes a retired model after this grace, not when its last user is done: a client
      // stalled longer than the grace (a loaded machine) would fail, so the grace here is far beyond a stall.
      { retireGraceMs: 10_000 },
    );
  });
});

describe('openScorerHandle (config.ranking)', () => {
  it('serves the baseline without a STAR model, the registry with one', async () => {
    const { openScorerHandle } = await import('../../src/star/registry/open.ts');
    const { loadConfig } = await import('../../src/config/load.ts');
    const { loadCstTemplates } = await import('../../src/cst/index.ts');
    const { silentLogger } = await import('../../src/logging/logger.ts');
    const templates = loadCstTemplates();
    const baseline = await openScorerHandle(loadConfig({ overrides: { ranking: { scorer: 'star' } } }), templates, silentLogger());
    assert.equal(baseline.current().readsSentences, false);
    assert.equal(baseline.executionProvider, null);
    await baseline.close();
    const star = await openScorerHandle(
      loadConfig({ overrides: { ranking: { scorer: 'star', modelDir: FIXTURE_MODEL, registryPollMs: 0 } } }),
      templates,
      silentLogger(),
    );
    assert.equal(star.version, 'star-tiny-1');
    assert.equal(star.executionProvider, 'cpu');
    await star.close();
  });
});
