import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { before, describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { prometheusBinDir } from './prometheus-bin.ts';
import { DASHBOARD_DIR, withGrafanaVariables } from './promql.ts';

const RULES_DIR = fileURLToPath(new URL('../../deploy/prometheus/', import.meta.url));
const run = promisify(execFile);

describe('promtool on deploy/prometheus', () => {
  let promtool: string | null = null;
  let skipReason = '';
  before(async () => {
    const bin = await prometheusBinDir();
    if (bin.dir !== null) promtool = join(bin.dir, 'promtool');
    else {
      skipReason = bin.reason;
      console.log(`# promtool unavailable, skipping: ${bin.reason}`);
    }
  });

  test('check rules', async (t) => {
    if (!promtool) return t.skip(skipReason);
    const { stdout } = await run(promtool, ['check', 'rules', 'alerts.yml'], { cwd: RULES_DIR });
    assert.match(stdout, /SUCCESS: \d+ rules found/);
  });

  test('check config (the compose Prometheus config)', async (t) => {
    if (!promtool) return t.skip(skipReason);
    // Relative rule_files resolve beside the config; compose mounts both into /etc/prometheus.
    const { stdout, stderr } = await run(promtool, ['check', 'config', 'prometheus.yml'], { cwd: RULES_DIR });
    assert.match(`${stdout}${stderr}`, /SUCCESS/);
  });

  test('unit tests of the alerts', async (t) => {
    if (!promtool) return t.skip(skipReason);
    const { stdout } = await run(promtool, ['test', 'rules', 'alerts.test.yml', 'alerts.long.test.yml'], { cwd: RULES_DIR, timeout: 120_000 });
    assert.doesNotMatch(stdout, /FAILED/);
    assert.equal(stdout.match(/SUCCESS/g)?.length, 2, stdout);
  });
});

describe('the model dashboard counts loads that happen before the first scrape', () => {
  test('loads (1h): a process start counts once, a hot reload once more, an old load not at all; increase() saw 0', async (t) => {
    const bin = await prometheusBinDir();
    if (bin.dir === null) return t.skip(bin.reason);
    const model = JSON.parse(readFileSync(new URL('model.json', DASHBOARD_DIR), 'utf8')) as { panels: { title: string; targets: { expr: string }[] }[] };
    const loads = model.panels.find((p) => p.title.startsWith('Loads'))!.targets.find((x) => /model_load/.test(x.expr))!.expr;
    const expr = withGrafanaVariables(loads);
    const dir = mkdtempSync(join(tmpdir(), 'starstream-promql-'));
    try {
      writeFileSync(join(dir, 'none.yml'), 'groups: []\n');
      // One sample a minute. Instance a starts at minute 90 (its model loaded then, before its first scrape: the
      // loads counter is 1 from its first sample on); at minute 110 it hot-reloads. Instance b has served the
      // same model since minute 0. Evaluated at minute 120, the last hour is minutes 60-120.
      const series = (labels: string, values: string): string => `      - series: '${labels}'\n        values: '${values}'`;
      const test = [
        'rule_files: [none.yml]',
        'evaluation_interval: 1m',
        'tests:',
        '  - interval: 1m',
        '    input_series:',
        series('starstream_model_loaded_timestamp_seconds{job="starstream",instance="a"}', '_x90 5400+0x19 6600+0x10'),
        series('starstream_model_loads_total{job="starstream",instance="a"}', '_x90 1+0x19 2+0x10'),
        series('starstream_model_loaded_timestamp_seconds{job="starstream",instance="b"}', '0+0x120'),
        series('starstream_model_loads_total{job="starstream",instance="b"}', '1+0x120'),
        '    promql_expr_test:',
        `      - expr: '${expr.replace(/'/g, "''")}'`,
        '        eval_time: 120m',
        "        exp_samples: [{ labels: '{}', value: 2 }]",
        // …nor for b, which loaded long before the hour: right, but for the wrong reason.
        '      - expr: sum(increase(starstream_model_loads_total{instance="b"}[1h]))',
        '        eval_time: 120m',
        "        exp_samples: [{ labels: '{}', value: 0 }]",
        // The old query: instance a started (and loaded) at minute 90, yet increase() sees nothing at minute 105.
        '      - expr: sum(increase(starstream_model_loads_total{instance="a"}[1h]))',
        '        eval_time: 105m',
        "        exp_samples: [{ labels: '{}', value: 0 }]",
      ].join('\n');
      writeFileSync(join(dir, 'loads.test.yml'), `${test}\n`);
      const { stdout } = await run(join(bin.dir, 'promtool'), ['test', 'rules', 'loads.test.yml'], { cwd: dir }).catch((err: { stdout?: string; stderr?: string }) => {
        assert.fail(`promtool test rules failed:\n${err.stdout ?? ''}${err.stderr ?? ''}`);
      });
      assert.match(stdout, /SUCCESS/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
