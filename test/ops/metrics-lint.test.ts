import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { Registry } from 'prom-client';
import { createTeacherMetrics } from '../../src/ops/teacher-metrics.ts';
import { startTestPipeline, type TestPipeline } from './helpers.ts';
import { prometheusBinDir } from './prometheus-bin.ts';

/**
 * What `/metrics` exposes passes `promtool check metrics` (the exposition lint: counters end in `_total`, other
 * types do not, no `_count`/`_sum`/`_bucket` outside histograms and summaries, help on every metric). Where
 * promtool cannot be had, the same naming rules are checked here, so the suite never passes on a skip alone.
 */

/** `promtool check metrics` on `text`: exit code and output. */
function promtoolCheck(promtool: string, text: string): Promise<{ code: number | null; output: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(promtool, ['check', 'metrics'], { stdio: ['pipe', 'pipe', 'pipe'] });
    let output = '';
    child.stdout.on('data', (c: Buffer) => (output += c.toString()));
    child.stderr.on('data', (c: Buffer) => (output += c.toString()));
    child.on('error', reject);
    child.on('exit', (code) => resolve({ code, output }));
    child.stdin.end(text);
  });
}

/** The naming rules promtool's lint applies to metric names and types, from the `# TYPE` lines. */
function namingProblems(text: string): string[] {
  const problems: string[] = [];
  for (const [, name, type] of text.matchAll(/^# TYPE (\S+) (\S+)$/gm)) {
    if (!name || !type) continue;
    if (type === 'counter' && !name.endsWith('_total')) problems.push(`${name}: counter without _total`);
    if (type !== 'counter' && name.endsWith('_total')) problems.push(`${name}: ${type} with _total`);
    if (type !== 'histogram' && type !== 'summary' && /_(count|sum|bucket)$/.test(name)) problems.push(`${name}: ${type} with a histogram suffix`);
    if (!new RegExp(`^# HELP ${name} \\S`, 'm').test(text)) problems.push(`${name}: no help`);
  }
  return problems;
}

describe('/metrics passes the exposition lint', () => {
  let running: TestPipeline;
  let pipelineText = '';
  let teacherText = '';
  let promtool: string | null = null;
  before(async () => {
    running = await startTestPipeline();
    await running.feed(100, { garbageEvery: 40, nonFiniteEvery: 0 });
    pipelineText = await (await fetch(`${running.server.url}/metrics`)).text();
    teacherText = await createTeacherMetrics(new Registry()).registry.metrics();
    const bin = await prometheusBinDir();
    if (bin.dir !== null) promtool = join(bin.dir, 'promtool');
    else console.log(`# promtool unavailable, checking the naming rules here: ${bin.reason}`);
  });
  after(() => running.close());

  test('the naming rules hold (checked here, promtool or not)', () => {
    assert.deepEqual(namingProblems(pipelineText), []);
    assert.deepEqual(namingProblems(teacherText), []);
    assert.doesNotMatch(pipelineText, /starstream_nodejs_active_(handles|requests|resources)_total/);
    assert.match(pipelineText, /^# TYPE starstream_nodejs_active_handles gauge$/m, 'the per-type gauge, whose sum is the total, stays');
  });

  test('the rule check catches what promtool catches', () => {
    assert.deepEqual(namingProblems('# HELP a_total x\n# TYPE a_total gauge\na_total 1\n'), ['a_total: gauge with _total']);
    assert.deepEqual(namingProblems('# HELP b x\n# TYPE b counter\nb 1\n'), ['b: counter without _total']);
  });

  test('promtool check metrics exits 0 on the pipeline and teacher registries', async (t) => {
    if (!promtool) return t.skip('promtool unavailable');
    for (const [what, text] of [['pipeline', pipelineText], ['teacher', teacherText]] as const) {
      const { code, output } = await promtoolCheck(promtool, text);
      assert.equal(code, 0, `${what}: ${output}`);
    }
    // And promtool does fail on the old names, so the check above is not vacuous.
    const old = await promtoolCheck(promtool, '# HELP starstream_nodejs_active_handles_total x\n# TYPE starstream_nodejs_active_handles_total gauge\nstarstream_nodejs_active_handles_total 3\n');
    assert.notEqual(old.code, 0);
  });
});
