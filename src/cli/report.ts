import type { DemoSummary } from './demo.ts';
import { describeOutput } from './output-file.ts';
import type { MalformedMix } from './produce.ts';

/** Human-readable summaries printed at the end of in-process runs (`demo`, `replay`). */

export interface SummaryOptions {
  /** What ran, for the title: `demo`, `replay ml-100k`. */
  readonly title: string;
  /** The recommendations file. */
  readonly out: string;
  /** The records malformed on purpose (the demo), so their dead letters read as intended. */
  readonly deliberate?: { readonly mix: MalformedMix; readonly count: number };
  /** Input lines that were not valid interactions (replay of a JSON-lines file). */
  readonly skippedLines?: { readonly count: number; readonly first?: string };
  /** Commands worth trying next, one `next:` line each. */
  readonly next: readonly string[];
}

export function summaryText(s: DemoSummary, options: SummaryOptions): string {
  const rows: [string, string][] = [
    ['events', s.events.toLocaleString('en-US')],
    ['wall time', `${s.seconds.toFixed(1)} s`],
    ['throughput', `${Math.round(s.eventsPerSecond).toLocaleString('en-US')} events/s`],
    ['recommendations', s.recommendations.toLocaleString('en-US')],
    ['latency p50 / p99 (batch received → recommendation)', `${s.latencyP50Ms.toFixed(1)} ms / ${s.latencyP99Ms.toFixed(1)} ms`],
    ['dead letters', deadLetterText(s.deadLetters, options.deliberate)],
  ];
  const skipped = options.skippedLines;
  if (skipped) {
    rows.push(['malformed input lines skipped', `${skipped.count.toLocaleString('en-US')}${skipped.count > 0 && skipped.first ? ` (first: ${skipped.first})` : ''}`]);
  }
  rows.push(
    [`streaming hit@10 (${s.hitCases.toLocaleString('en-US')} cases)`, s.hitRate.toFixed(3)],
    ['  popularity baseline, same cases', s.popularityHitRate.toFixed(3)],
    ['recommendations written to', s.output ? describeOutput(s.output) : options.out],
  );
  const side = s.sideStream;
  if (side) {
    const c = side.manifest.counts;
    rows.push(
      [`teacher cases sampled (${side.backend}: ${side.model})`, side.casesSampled.toLocaleString('en-US')],
      ['  trajectories', side.trajectories.toLocaleString('en-US')],
      ['  labelled: kept / rejected / unlabelled', `${c.kept} / ${c.rejected} / ${side.unlabelled}`],
      ['  data set (train/ reads it)', side.dataset],
    );
  }
  const width = Math.max(...rows.map(([k]) => k.length));
  const lines = [
    '',
    `starstream ${options.title} summary`,
    ...rows.map(([k, v]) => `  ${k.padEnd(width)}  ${v}`),
    '',
    '  hit@10: the share of cases (a user came back) where the item they chose next was among the 10 recommended',
    '  to them at their previous event; the popularity baseline is the 10 most popular candidates at that moment.',
    ...options.next.map((n) => `next: ${n}`),
  ];
  return `${lines.join('\n')}\n`;
}

export function printSummary(s: DemoSummary, options: SummaryOptions): void {
  process.stdout.write(summaryText(s, options));
}

function deadLetterText(deadLetters: number, deliberate: SummaryOptions['deliberate']): string {
  const n = deadLetters.toLocaleString('en-US');
  if (!deliberate || deliberate.count === 0) return n;
  const kinds = [
    deliberate.mix.garbageEvery > 0 ? `every ${deliberate.mix.garbageEvery.toLocaleString('en-US')}th record garbage bytes` : '',
    deliberate.mix.nonFiniteEvery > 0 ? `every ${deliberate.mix.nonFiniteEvery.toLocaleString('en-US')}th a NaN value` : '',
  ].filter(Boolean);
  const why = `malformed on purpose (${kinds.join(', ')}) to show the dead-letter topic`;
  if (deadLetters === deliberate.count) return `${n}, all ${why}`;
  return `${n}: ${deliberate.count.toLocaleString('en-US')} ${why}; ${(deadLetters - deliberate.count).toLocaleString('en-US')} others (see the warnings)`;
}

/** How many of the first `total` records the mix malforms (a record due for both kinds is garbage, once). */
export function deliberateCount(total: number, mix: MalformedMix): number {
  const { garbageEvery: g, nonFiniteEvery: f } = mix;
  const every = (n: number): number => (n > 0 ? Math.floor(total / n) : 0);
  return every(g) + every(f) - (g > 0 && f > 0 ? every(lcm(g, f)) : 0);
}

function gcd(a: number, b: number): number {
  return b === 0 ? a : gcd(b, a % b);
}

function lcm(a: number, b: number): number {
  return (a / gcd(a, b)) * b;
}
