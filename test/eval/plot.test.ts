import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { barChartSvg, lineChartSvg } from '../../src/eval/plot.ts';

/** Checks that the SVG is one well-formed element tree: every tag closed, in order. */
function assertWellFormed(svg: string): void {
  assert.match(svg, /^<svg xmlns="http:\/\/www\.w3\.org\/2000\/svg"/);
  assert.match(svg.trimEnd(), /<\/svg>$/);
  const stack: string[] = [];
  for (const m of svg.matchAll(/<(\/?)([a-zA-Z]+)([^>]*?)(\/?)>/g)) {
    const [, closing, name, attrs, selfClosing] = m;
    assert.ok(!/[<]/.test(attrs!), 'no "<" inside a tag');
    if (selfClosing) continue;
    if (closing) assert.equal(stack.pop(), name, `</${name}> closes the open tag`);
    else stack.push(name!);
  }
  assert.deepEqual(stack, [], 'every tag is closed');
  // Text between tags must not contain raw markup characters.
  for (const text of svg.split(/<[^>]*>/)) assert.ok(!/[<>]/.test(text) && !/&(?!amp;|lt;|gt;)/.test(text), `text "${text}" is escaped`);
  assert.ok(!svg.includes('NaN') && !svg.includes('Infinity'), 'every coordinate is a number');
}

describe('barChartSvg', () => {
  const chart = {
    title: 'Streaming protocol (K=10)',
    metrics: ['hit rate@10', 'NDCG@10'],
    series: [
      { name: 'popularity', values: [0.04, 0.02] },
      { name: 'item-cf', values: [0.14, 0.08] },
      { name: 'baseline <tuned> & co', values: [0.15, 0.081] },
    ],
    references: [{ metric: 0, value: 0.1, label: 'paper HR@10' }],
  };

  it('is valid SVG that names every series, metric and reference', () => {
    const svg = barChartSvg(chart);
    assertWellFormed(svg);
    for (const name of ['popularity', 'item-cf', 'baseline &lt;tuned&gt; &amp; co', 'hit rate@10', 'NDCG@10', 'paper HR@10', 'Streaming protocol (K=10)']) {
      assert.ok(svg.includes(name), name);
    }
    assert.equal((svg.match(/<rect [^>]*fill="#/g) ?? []).length, 3 * 2 + 3, 'one bar per series and metric, one legend swatch per series');
    assert.ok(svg.includes('>0.140<'), 'values are labelled');
  });

  it('draws taller bars for larger values', () => {
    const svg = barChartSvg({ title: 't', metrics: ['m'], series: [{ name: 'small', values: [1] }, { name: 'large', values: [3] }] });
    // Bars come first; the legend swatches (10×10) follow.
    const rects = [...svg.matchAll(/<rect x="[\d.]+" y="[\d.]+" width="[\d.]+" height="([\d.]+)"/g)].map((m) => Number(m[1]));
    assert.equal(rects.length, 4);
    const heights = rects.slice(0, 2);
    assert.ok(Math.abs(heights[1]! / heights[0]! - 3) < 0.01, `heights ${heights}`);
  });

  it('stays valid for all-zero values and no series', () => {
    assertWellFormed(barChartSvg({ title: 'zeros', metrics: ['a'], series: [{ name: 's', values: [0] }] }));
    assertWellFormed(barChartSvg({ title: 'empty', metrics: ['a'], series: [] }));
  });
});

describe('lineChartSvg', () => {
  it('is valid SVG with one path per series and every series name', () => {
    const svg = lineChartSvg({
      title: 'RSS during the run',
      xLabel: 'seconds',
      yLabel: 'MiB',
      series: [
        { name: 'rss', points: [[0, 100], [1, 120], [2, 118]] },
        { name: 'heap <used>', points: [[0, 40], [2, 60]] },
      ],
    });
    assertWellFormed(svg);
    for (const name of ['rss', 'heap &lt;used&gt;', 'seconds', 'MiB', 'RSS during the run']) assert.ok(svg.includes(name), name);
    const paths = [...svg.matchAll(/<path d="([^"]+)"/g)].map((m) => m[1]!);
    assert.equal(paths.length, 2);
    assert.equal(paths[0]!.split(/[ML]/).filter(Boolean).length, 3);
  });

  it('stays valid for a single point at the origin', () => {
    assertWellFormed(lineChartSvg({ title: 't', xLabel: 'x', yLabel: 'y', series: [{ name: 'one', points: [[0, 0]] }] }));
  });
});
