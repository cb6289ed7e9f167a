import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { after, before, describe, test } from 'node:test';
import { Registry } from 'prom-client';
import { METRIC_PREFIX, catalogEntries, createMetrics, type MetricSpec } from '../../src/ops/catalog.ts';
import { defaultProcessMetrics, metricsDocs } from '../../src/ops/catalog-docs.ts';
import { startTestPipeline, type TestPipeline } from './helpers.ts';

interface Registered {
  readonly name: string;
  readonly type: string;
  readonly labels: string[];
  readonly help: string;
}

function registered(registry: Registry): Registered[] {
  return registry.getMetricsAsArray().map((metric) => {
    const m = metric as unknown as { name: string; type: string; help: string; labelNames?: string[] };
    return { name: m.name, type: m.type, labels: [...(m.labelNames ?? [])], help: m.help };
  });
}

function expected(specs: readonly MetricSpec[]): Registered[] {
  const fromCatalog = specs.map((s) => ({ name: s.name, type: s.type, labels: [...s.labels], help: s.help }));
  return [...fromCatalog, ...defaultProcessMetrics()];
}

const byName = (a: Registered, b: Registered): number => a.name.localeCompare(b.name);

describe('metric catalog', () => {
  let running: TestPipeline;
  before(async () => {
    running = await startTestPipeline();
    await running.feed(200, { garbageEvery: 50, nonFiniteEvery: 0 });
  });
  after(() => running.close());

  test('the pipeline registry holds exactly the catalog (pipeline group) plus the process metrics', () => {
    // buildPipeline is the composition root `starstream run` uses: a metric created anywhere else shows here.
    assert.deepEqual(registered(running.registry).sort(byName), expected(catalogEntries('pipeline')).sort(byName));
  });

  test('the teacher group creates exactly its catalog entries', () => {
    const registry = new Registry();
    createMetrics(registry, 'teacher');
    assert.deepEqual(registered(registry).sort(byName), expected(catalogEntries('teacher')).sort(byName));
  });

  test('docs/metrics.md is generated from the catalog', () => {
    const doc = readFileSync(new URL('../../docs/metrics.md', import.meta.url), 'utf8');
    assert.equal(doc, metricsDocs(), 'regenerate it with: node bin/starstream.js metrics docs > docs/metrics.md');
    for (const m of catalogEntries()) assert.ok(doc.includes(`\`${m.name}\``), m.name);
  });

  test('names carry the prefix and their unit; labels are bounded', () => {
    const forbidden = /^(user|item|event)(_?id)?$|^(userid|itemid|eventid|id|title|message|reason_text)$/i;
    const names = new Set<string>();
    for (const m of catalogEntries()) {
      assert.ok(!names.has(m.name), `${m.name} declared twice`);
      names.add(m.name);
      assert.ok(m.name.startsWith(METRIC_PREFIX), m.name);
      assert.match(m.name, /^[a-z][a-z0-9_]*$/, m.name);
      if (m.type === 'counter') assert.ok(m.name.endsWith('_total'), `counter ${m.name} must end in _total`);
      else assert.ok(!m.name.endsWith('_total'), `${m.type} ${m.name} must not end in _total`);
      if (m.type === 'histogram') {
        assert.ok(m.buckets && m.buckets.length >= 5, `${m.name} needs buckets that fit`);
        assert.deepEqual([...m.buckets].sort((a, b) => a - b), [...m.buckets], `${m.name} buckets ascend`);
        // `_per_batch`: a count whose unit is the batch (store round trips per batch).
        assert.match(m.name, /_(seconds|rows|lists|records|bytes|per_batch)$/, `${m.name} names its unit`);
      }
      for (const label of m.labels) assert.doesNotMatch(label, forbidden, `${m.name}: label ${label} is unbounded`);
      assert.ok(m.help.length > 10, `${m.name} explains itself`);
    }
  });

  test('the key series move on a running pipeline', async () => {
    const text = await running.registry.metrics();
    const value = (series: string): number => {
      const line = text.split('\n').find((l) => l.startsWith(`${series} `));
      assert.ok(line, `${series} is exported`);
      return Number(line.split(' ')[1]);
    };
    assert.equal(value('starstream_records_consumed_total'), 200);
    assert.ok(value('starstream_recommendations_total') > 0);
    assert.equal(value('starstream_dead_letters_total{code="UNDECODABLE"}'), 4);
    assert.ok(value('starstream_stage_duration_seconds_count{stage="candidates"}') > 0);
    assert.ok(value('starstream_batch_stage_duration_seconds_count{stage="publish"}') > 0);
    assert.ok(value('starstream_end_to_end_latency_seconds_count') > 0);
    assert.ok(value('starstream_event_latency_seconds_count') > 0);
    assert.ok(value('starstream_store_operation_duration_seconds_count{operation="openBatch"}') > 0);
    assert.match(text, /starstream_online_cases_total\{model_version="[^"]+"\} [1-9]/);
    assert.match(text, /starstream_online_hits_total\{model_version="[^"]+",ranker="served"\} \d/);
    assert.match(text, /starstream_model_info\{version="[^"]+",provider="cpu"\} 1/);
    assert.match(text, /starstream_build_info\{version="[^"]+",event_log="embedded",store="embedded"\} 1/);
    assert.equal(value('starstream_model_loads_total'), 1);
  });
});
