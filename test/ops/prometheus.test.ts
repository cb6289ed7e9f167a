import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { tempRegistry } from '../star/helpers.ts';
import { startTestPipeline, type TestPipeline } from './helpers.ts';
import { prometheusBinDir } from './prometheus-bin.ts';
import { dashboardQueries, ruleQueries, withGrafanaVariables } from './promql.ts';

// A real Prometheus (Debian's package, fetched by scripts/prometheus/fetch.sh) scrapes a running pipeline —
// buildPipeline on the embedded default, as `starstream run` wires it, fed a generated stream — every second.
// Asserted through Prometheus' HTTP API: the key series exist and move, every dashboard query and rule
// expression is valid PromQL that Prometheus accepts, and the alert rules load.

const RULES = fileURLToPath(new URL('../../deploy/prometheus/alerts.yml', import.meta.url));

interface Sample {
  metric: Record<string, string>;
  value: [number, string];
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as { port: number };
      server.close(() => resolve(port));
    });
  });
}

/** How long a wait polls before giving up: a guard against a hang, generous for a loaded machine. */
const WAIT_MS = 120_000;

async function waitFor<T>(what: string, deadlineMs: number, probe: () => Promise<T | null>): Promise<T> {
  const deadline = Date.now() + deadlineMs;
  let last: unknown = null;
  while (Date.now() < deadline) {
    try {
      const value = await probe();
      if (value !== null) return value;
    } catch (err) {
      last = err;
    }
    await new Promise((r) => setTimeout(r, 250));
  }
  throw new Error(`timed out waiting for ${what}${last ? `: ${(last as Error).message}` : ''}`);
}

describe('a real Prometheus scraping a running pipeline', () => {
  let bin: string | null = null;
  let skipReason = '';
  let running: TestPipeline;
  let prometheus: ChildProcess | null = null;
  let promUrl = '';
  let output = '';
  const dir = mkdtempSync(join(tmpdir(), 'starstream-prometheus-'));
  const registry = tempRegistry(['v1']);
  let feeding = true;
  let feeder: Promise<void> = Promise.resolve();

  async function query(expr: string): Promise<Sample[]> {
    const res = await fetch(`${promUrl}/api/v1/query?query=${encodeURIComponent(expr)}`);
    const body = (await res.json()) as { status: string; error?: string; data?: { result: Sample[] } };
    if (body.status !== 'success') throw new Error(`${expr}: ${body.error ?? res.status}`);
    return body.data!.result;
  }

  async function value(expr: string): Promise<number | null> {
    const result = await query(expr);
    return result.length ? Number(result[0]!.value[1]) : null;
  }

  before(async () => {
    const found = await prometheusBinDir();
    if (found.dir === null) {
      skipReason = found.reason;
      console.log(`# prometheus unavailable, skipping: ${found.reason}`);
      return;
    }
    bin = join(found.dir, 'prometheus');
    running = await startTestPipeline({ ranking: { scorer: 'star', modelDir: registry.dir, registryPollMs: 0 } });
    await running.feed(100, { garbageEvery: 25, nonFiniteEvery: 0 });
    const target = new URL(running.server.url).host;
    writeFileSync(
      join(dir, 'prometheus.yml'),
      [
        'global: { scrape_interval: 1s, evaluation_interval: 1s }',
        `rule_files: ['${RULES}']`,
        'scrape_configs:',
        '  - job_name: starstream',
        `    static_configs: [{ targets: ['${target}'] }]`,
        '',
      ].join('\n'),
    );
    const port = await freePort();
    promUrl = `http://127.0.0.1:${port}`;
    prometheus = spawn(
      bin,
      [
        `--config.file=${join(dir, 'prometheus.yml')}`,
        `--storage.tsdb.path=${join(dir, 'data')}`,
        `--web.listen-address=127.0.0.1:${port}`,
        '--storage.tsdb.retention.time=1h',
      ],
      { stdio: ['ignore', 'pipe', 'pipe'] },
    );
    prometheus.stdout!.on('data', (d: Buffer) => (output += d.toString()));
    prometheus.stderr!.on('data', (d: Buffer) => (output = (output + d.toString()).slice(-20_000)));
    await waitFor('Prometheus ready', WAIT_MS, async () => ((await fetch(`${promUrl}/-/ready`)).ok ? true : null)).catch((err: Error) => {
      throw new Error(`${err.message}\n${output}`);
    });
    // Keep the stream moving (and the lag gauge fresh, as `starstream run` does every few seconds).
    feeder = (async () => {
      while (feeding) {
        await running.feed(40);
        await running.pipeline.runner.lag();
        await new Promise((r) => setTimeout(r, 300));
      }
    })();
  });

  after(async () => {
    feeding = false;
    await feeder;
    if (prometheus && prometheus.exitCode === null) {
      const exited = new Promise((r) => prometheus!.once('exit', r));
      prometheus.kill('SIGTERM');
      await exited;
    }
    if (running) await running.close();
    registry.cleanup();
    rmSync(dir, { recursive: true, force: true });
  });

  test('the target is up and the key series exist', async (t) => {
    if (!bin) return t.skip(skipReason);
    await waitFor('up{job="starstream"} == 1', WAIT_MS, async () => ((await value('up{job="starstream"}')) === 1 ? true : null));
    const series = [
      'starstream_records_consumed_total',
      'starstream_recommendations_total',
      'starstream_dead_letters_total{code="UNDECODABLE"}',
      'starstream_stage_duration_seconds_bucket{stage="ranking"}',
      'starstream_batch_stage_duration_seconds_count{stage="publish"}',
      'starstream_end_to_end_latency_seconds_count',
      'starstream_consumer_lag_records',
      'starstream_store_operation_duration_seconds_count{operation="openBatch"}',
      'starstream_star_inference_duration_seconds_count{provider="cpu"}',
      'starstream_star_batch_rows_count',
      'starstream_model_info{version="star-v1",provider="cpu"}',
      'starstream_online_cases_total',
      'starstream_process_cpu_seconds_total',
      'starstream_nodejs_eventloop_lag_p99_seconds',
    ];
    await waitFor('every key series', WAIT_MS, async () => {
      for (const s of series) if ((await query(s)).length === 0) return null;
      return true;
    }).catch(async (err: Error) => {
      const missing = [];
      for (const s of series) if ((await query(s)).length === 0) missing.push(s);
      throw new Error(`${err.message}; missing: ${missing.join(', ')}`);
    });
  });

  test('counters and histograms move between scrapes', async (t) => {
    if (!bin) return t.skip(skipReason);
    const first = await waitFor('records consumed', WAIT_MS, () => value('sum(starstream_records_consumed_total)'));
    const moved = await waitFor('records consumed to grow', WAIT_MS, async () => {
      const now = await value('sum(starstream_records_consumed_total)');
      return now !== null && now > first ? now : null;
    });
    assert.ok(moved > first);
    const rate = await waitFor('a positive rate', WAIT_MS, async () => {
      const r = await value('sum(rate(starstream_recommendations_total[10s]))');
      return r !== null && r > 0 ? r : null;
    });
    assert.ok(rate > 0);
    const p99 = await waitFor('an end-to-end p99', WAIT_MS, async () => {
      const q = await value('histogram_quantile(0.99, sum by (le) (rate(starstream_end_to_end_latency_seconds_bucket[10s])))');
      return q !== null && Number.isFinite(q) ? q : null;
    });
    // The query answers with a latency; how large it is depends on the machine's load, which is not tested here.
    assert.ok(p99 >= 0, `p99 ${p99}`);
  });

  test('every dashboard query and rule expression is accepted by Prometheus', async (t) => {
    if (!bin) return t.skip(skipReason);
    const { queries: rules } = ruleQueries();
    for (const q of [...dashboardQueries(), ...rules]) {
      await query(withGrafanaVariables(q.expr)).catch((err: Error) => assert.fail(`${q.where}: ${err.message}`));
    }
    // Dashboards read real data: the overview's throughput answers with a value now.
    assert.ok(((await value('sum(rate(starstream_records_consumed_total[1m]))')) ?? 0) > 0);
  });

  test('the alert rules load and evaluate', async (t) => {
    if (!bin) return t.skip(skipReason);
    const res = await fetch(`${promUrl}/api/v1/rules`);
    const body = (await res.json()) as { data: { groups: { name: string; rules: { health: string; name: string; lastError?: string }[] }[] } };
    const groups = body.data.groups.map((g) => g.name).sort();
    assert.deepEqual(groups, ['starstream.model', 'starstream.recording', 'starstream.stream', 'starstream.teacher']);
    await waitFor('every rule evaluated healthy', WAIT_MS, async () => {
      const r = (await (await fetch(`${promUrl}/api/v1/rules`)).json()) as typeof body;
      const rules = r.data.groups.flatMap((g) => g.rules);
      const bad = rules.filter((rule) => rule.health !== 'ok');
      return bad.length === 0 ? true : null;
    });
  });
});
