import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { benchStar } from '../../bench/star.ts';
import { qualitySvg, qualityTable, starQuality } from '../../bench/star-quality.ts';
import { FIXTURE_MODEL } from './helpers.ts';
import { writeSyntheticCases } from './fixture-cases.ts';

test('quality table and benchmark run end to end on the fixture model (small sizes)', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'star-bench-'));
  try {
    const cases = join(dir, 'cases.jsonl');
    await writeSyntheticCases(cases, 4_000);
    const rows = await starQuality(cases, { modelDirs: [FIXTURE_MODEL] });
    assert.deepEqual(rows.map((r) => r.system), ['popularity', 'item-cf co-occurrence', 'embeddings', 'baseline ranker', 'STAR (star-tiny-1)']);
    for (const r of rows) {
      assert.ok(r.cases > 0 && r.hr1 <= r.hr3 && r.hr3 <= r.hr5 && r.hr5 <= 1);
      assert.ok(Math.abs(r.avg - ((r.hr1 + r.hr3 + r.hr5) / 3) * 100) < 1e-9);
    }
    assert.match(qualityTable(rows), /\| STAR \(star-tiny-1\) \|/);
    assert.match(qualitySvg(rows, 't <&>'), /^<svg[\s\S]*t &lt;&amp;&gt;[\s\S]*<\/svg>$/);

    const bench = await benchStar(FIXTURE_MODEL, { casesFile: cases, lists: 100, latencyCalls: 20, throughputLists: 64, concurrency: 8, ratioBatchLists: 4 });
    assert.deepEqual(bench.map((b) => b.unit), ['ms', 'ms', 'lists/s', 'ratio']);
    assert.ok(bench.every((b) => Number.isFinite(b.value) && b.value > 0));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
