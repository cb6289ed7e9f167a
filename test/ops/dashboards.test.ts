import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { describe, test } from 'node:test';
import { DASHBOARD_DIR, dashboardFiles, dashboardQueries, knownSeries, metricNames, ruleQueries } from './promql.ts';

describe('dashboards and alert rules name only catalog metrics', () => {
  const { queries: rules, recorded } = ruleQueries();
  const known = knownSeries(recorded);

  test('the PromQL lexer finds metric names and skips the rest', () => {
    assert.deepEqual(
      metricNames('histogram_quantile(0.99, sum by (le, stage) (rate(starstream_stage_duration_seconds_bucket{stage="x"}[$__rate_interval])))'),
      ['starstream_stage_duration_seconds_bucket'],
    );
    assert.deepEqual(
      metricNames('sum by (ranker) (rate(a_total[5m])) / ignoring (ranker) group_left sum(rate(b_total[5m] offset 1h)) > 7 * 86400 and time() - c > 1e3'),
      ['a_total', 'b_total', 'c'],
    );
    assert.deepEqual(metricNames('up{job="starstream"} == 0'), ['up']);
  });

  test('there are overview, model and teacher dashboards, each with a unique uid', () => {
    assert.deepEqual(dashboardFiles(), ['model.json', 'overview.json', 'teacher.json']);
    const uids = dashboardFiles().map((f) => (JSON.parse(readFileSync(new URL(f, DASHBOARD_DIR), 'utf8')) as { uid: string }).uid);
    assert.equal(new Set(uids).size, uids.length);
  });

  test('every dashboard query', () => {
    const queries = dashboardQueries();
    assert.ok(queries.length >= 40, `only ${queries.length} queries found`);
    for (const q of queries) {
      const names = metricNames(q.expr);
      assert.ok(names.length > 0, `${q.where}: no metric in ${q.expr}`);
      for (const name of names) assert.ok(known.has(name), `${q.where}: ${name} is not in the metric catalog (src/ops/catalog.ts)`);
    }
  });

  test('every alert and recording rule', () => {
    assert.ok(rules.length >= 15);
    for (const q of rules) {
      const names = metricNames(q.expr);
      assert.ok(names.length > 0, `${q.where}: no metric`);
      for (const name of names) assert.ok(known.has(name), `${q.where}: ${name} is not in the metric catalog (src/ops/catalog.ts)`);
    }
  });
});
