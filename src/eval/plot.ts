/**
 * A dependency-free SVG bar chart for evaluation reports: groups of bars (one group per metric, one bar per
 * system), value labels on the bars. Enough for a report people read at a glance.
 */

export interface BarChart {
  readonly title: string;
  readonly metrics: readonly string[];
  /** A non-finite value (NaN) draws no bar: the system was not measured on that metric. */
  readonly series: readonly { readonly name: string; readonly values: readonly number[] }[];
  /** Optional reference lines, e.g. published baselines: metric index → value and label. */
  readonly references?: readonly { readonly metric: number; readonly value: number; readonly label: string }[];
}

const LEGEND_W = 150;

const PALETTE = ['#9aa5b1', '#6c8ebf', '#82b366', '#d6b656', '#b85450', '#9673a6', '#d79b00', '#23445d'];

export function barChartSvg(chart: BarChart): string {
  const width = 760;
  const left = 50;
  const top = 40;
  const plotH = 280;
  // The legend wraps into rows of LEGEND_W-wide entries; the chart grows by a row's height for each extra row.
  const perRow = Math.max(1, Math.floor((width - left) / LEGEND_W));
  const legendRows = Math.max(1, Math.ceil(chart.series.length / perRow));
  const height = 380 + (legendRows - 1) * 16;
  const finite = chart.series.flatMap((s) => s.values).filter(Number.isFinite);
  const max = Math.max(1e-9, ...finite, ...(chart.references ?? []).map((r) => r.value)) * 1.15;
  const groupW = (width - left - 20) / chart.metrics.length;
  const barW = Math.min(40, (groupW - 20) / chart.series.length);
  const y = (v: number): number => top + plotH - (v / max) * plotH;
  const parts: string[] = [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" font-family="sans-serif" font-size="11">`,
    `<rect width="100%" height="100%" fill="white"/>`,
    `<text x="${width / 2}" y="20" text-anchor="middle" font-size="14">${escape(chart.title)}</text>`,
    `<line x1="${left}" y1="${top + plotH}" x2="${width - 10}" y2="${top + plotH}" stroke="#333"/>`,
  ];
  chart.metrics.forEach((metric, m) => {
    const gx = left + m * groupW + 10;
    chart.series.forEach((s, i) => {
      const v = s.values[m] ?? 0;
      if (!Number.isFinite(v)) return;
      const x = gx + i * barW;
      parts.push(`<rect x="${x.toFixed(1)}" y="${y(v).toFixed(1)}" width="${(barW - 2).toFixed(1)}" height="${(top + plotH - y(v)).toFixed(1)}" fill="${PALETTE[i % PALETTE.length]}"/>`);
      parts.push(`<text x="${(x + barW / 2 - 1).toFixed(1)}" y="${(y(v) - 3).toFixed(1)}" text-anchor="middle" font-size="9">${formatValue(v)}</text>`);
    });
    parts.push(`<text x="${(gx + (chart.series.length * barW) / 2).toFixed(1)}" y="${top + plotH + 16}" text-anchor="middle">${escape(metric)}</text>`);
  });
  for (const r of chart.references ?? []) {
    const gx = left + r.metric * groupW + 10;
    const x2 = gx + chart.series.length * barW;
    parts.push(`<line x1="${gx}" y1="${y(r.value).toFixed(1)}" x2="${x2.toFixed(1)}" y2="${y(r.value).toFixed(1)}" stroke="#b85450" stroke-dasharray="4 3"/>`);
    parts.push(`<text x="${x2.toFixed(1)}" y="${(y(r.value) - 2).toFixed(1)}" text-anchor="end" font-size="9" fill="#b85450">${escape(r.label)}</text>`);
  }
  chart.series.forEach((s, i) => {
    const x = left + (i % perRow) * LEGEND_W;
    const ly = 358 + Math.floor(i / perRow) * 16;
    parts.push(`<rect x="${x}" y="${ly}" width="10" height="10" fill="${PALETTE[i % PALETTE.length]}"/>`);
    parts.push(`<text x="${x + 14}" y="${ly + 9}">${escape(s.name)}</text>`);
  });
  parts.push('</svg>');
  return `${parts.join('\n')}\n`;
}

/** Several charts (each a whole `<svg>` from this module) stacked top to bottom in one SVG document. */
export function stackSvg(charts: readonly string[]): string {
  let y = 0;
  let width = 0;
  const parts: string[] = [];
  for (const chart of charts) {
    const w = Number(/width="(\d+)"/.exec(chart)?.[1] ?? 0);
    const h = Number(/height="(\d+)"/.exec(chart)?.[1] ?? 0);
    // A group per chart rather than nested <svg> elements: simple renderers (ImageMagick) misplace those.
    const body = chart.trimEnd().replace(/^<svg[^>]*>/, '').replace(/<\/svg>$/, '');
    parts.push(`<g transform="translate(0 ${y})">${body}</g>`);
    y += h;
    width = Math.max(width, w);
  }
  return `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${y}" font-family="sans-serif" font-size="11">\n${parts.join('\n')}\n</svg>\n`;
}

function formatValue(v: number): string {
  return v >= 10 ? v.toFixed(1) : v.toFixed(3);
}

function escape(text: string): string {
  return text.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');
}

export interface LineChart {
  readonly title: string;
  readonly xLabel: string;
  readonly yLabel: string;
  readonly series: readonly { readonly name: string; readonly points: readonly (readonly [number, number])[] }[];
}

/** Lines over a shared x axis (time series such as RSS or throughput during a run). */
export function lineChartSvg(chart: LineChart): string {
  const width = 760;
  const height = 360;
  const left = 70;
  const right = 20;
  const top = 40;
  const bottom = 60;
  const all = chart.series.flatMap((s) => s.points);
  const maxX = Math.max(1e-9, ...all.map((p) => p[0]));
  const maxY = Math.max(1e-9, ...all.map((p) => p[1])) * 1.1;
  const x = (v: number): number => left + (v / maxX) * (width - left - right);
  const y = (v: number): number => top + (1 - v / maxY) * (height - top - bottom);
  const parts: string[] = [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" font-family="sans-serif" font-size="11">`,
    `<rect width="100%" height="100%" fill="white"/>`,
    `<text x="${width / 2}" y="20" text-anchor="middle" font-size="14">${escape(chart.title)}</text>`,
    `<line x1="${left}" y1="${y(0)}" x2="${width - right}" y2="${y(0)}" stroke="#333"/>`,
    `<line x1="${left}" y1="${top}" x2="${left}" y2="${y(0)}" stroke="#333"/>`,
    `<text x="${width / 2}" y="${height - 28}" text-anchor="middle">${escape(chart.xLabel)}</text>`,
    `<text x="14" y="${top + (height - top - bottom) / 2}" transform="rotate(-90 14 ${top + (height - top - bottom) / 2})" text-anchor="middle">${escape(chart.yLabel)}</text>`,
  ];
  for (let t = 0; t <= 4; t++) {
    const vy = (maxY * t) / 4;
    const vx = (maxX * t) / 4;
    parts.push(`<text x="${left - 4}" y="${y(vy).toFixed(1)}" text-anchor="end">${formatValue(vy)}</text>`);
    parts.push(`<text x="${x(vx).toFixed(1)}" y="${y(0) + 14}" text-anchor="middle">${formatValue(vx)}</text>`);
  }
  chart.series.forEach((s, i) => {
    const d = s.points.map((p, j) => `${j === 0 ? 'M' : 'L'}${x(p[0]).toFixed(1)},${y(p[1]).toFixed(1)}`).join(' ');
    parts.push(`<path d="${d}" fill="none" stroke="${PALETTE[i % PALETTE.length]}" stroke-width="2"/>`);
    parts.push(`<rect x="${left + i * 160}" y="${height - 16}" width="10" height="10" fill="${PALETTE[i % PALETTE.length]}"/>`);
    parts.push(`<text x="${left + i * 160 + 14}" y="${height - 7}">${escape(s.name)}</text>`);
  });
  parts.push('</svg>');
  return `${parts.join('\n')}\n`;
}
