import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { describe, test } from 'node:test';
import { DASHBOARD_DIR, dashboardFiles, dashboardQueries, knownSeries, metricNames, ruleQueries, withGrafanaVariables } from './promql.ts';

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

describe('dashboards filter by job and instance', () => {
  interface Variable {
    name: string;
    type: string;
    query?: { query?: string };
    includeAll?: boolean;
    allValue?: string;
  }
  const dashboards = dashboardFiles().map((f) => ({ file: f, json: JSON.parse(readFileSync(new URL(f, DASHBOARD_DIR), 'utf8')) as { templating: { list: Variable[] } } }));

  test('every dashboard has job and instance variables (label_values, All = .*)', () => {
    for (const { file, json } of dashboards) {
      for (const name of ['job', 'instance']) {
        const v = json.templating.list.find((x) => x.name === name);
        assert.ok(v, `${file}: no $${name} variable`);
        assert.equal(v.type, 'query');
        assert.match(v.query?.query ?? '', new RegExp(`^label_values\\(starstream_\\w+(\\{[^}]*\\})?, ${name}\\)$`), file);
        assert.equal(v.includeAll, true);
        assert.equal(v.allValue, '.*');
      }
    }
  });

  test('every metric selector in every query carries both filters', () => {
    for (const q of dashboardQueries()) {
      for (const m of q.expr.matchAll(/\b(starstream_[a-z0-9_]+)(\{[^}]*\})?/g)) {
        assert.ok(m[2]?.includes('job=~"$job"') && m[2].includes('instance=~"$instance"'), `${q.where}: ${m[1]} is not filtered: ${q.expr}`);
      }
    }
  });

  test('withGrafanaVariables turns the filters into match-all regexes Prometheus accepts', () => {
    assert.equal(withGrafanaVariables('rate(a_total{job=~"$job",instance=~"$instance"}[$__rate_interval])'), 'rate(a_total{job=~".*",instance=~".*"}[1m])');
  });
});

describe('overview and model panels', () => {
  const panel = (file: string, title: RegExp): { title: string; fieldConfig: { overrides: { matcher: { options: string }; properties: { id: string; value: unknown }[] }[] }; targets: { expr: string; refId: string }[] } => {
    const json = JSON.parse(readFileSync(new URL(file, DASHBOARD_DIR), 'utf8')) as { panels: ReturnType<typeof panel>[] };
    const p = json.panels.find((x) => title.test(x.title));
    assert.ok(p, `${file}: no panel ${title}`);
    return p;
  };

  test('the vector store errors share no axis with the user and item counts', () => {
    const p = panel('overview.json', /^Vector store errors/);
    const counts = p.targets.filter((t) => /store_(users|items)/.test(t.expr)).map((t) => t.refId);
    assert.equal(counts.length, 2);
    for (const ref of counts) {
      const override = p.fieldConfig.overrides.find((o) => o.matcher.options === ref);
      assert.ok(override?.properties.some((x) => x.id === 'custom.axisPlacement' && x.value === 'right'), `${ref} on the right axis`);
    }
    const errors = p.targets.find((t) => /store_operation_errors_total/.test(t.expr))!;
    assert.ok(!p.fieldConfig.overrides.some((o) => o.matcher.options === errors.refId), 'errors stay on the left axis');
  });

  test('model loads per hour are not increase() of a counter that is 1 before the first scrape', () => {
    const p = panel('model.json', /^Loads and refusals/);
    const loads = p.targets.find((t) => /model_load/.test(t.expr))!;
    assert.doesNotMatch(loads.expr, /increase\(starstream_model_loads_total/);
    assert.match(loads.expr, /changes\(starstream_model_loaded_timestamp_seconds/);
  });
});
