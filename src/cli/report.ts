import type { DemoSummary } from './demo.ts';

/** Human-readable summaries printed at the end of commands. */

export function printDemoSummary(s: DemoSummary, out: string): void {
  const rows: [string, string][] = [
    ['events', s.events.toLocaleString('en-US')],
    ['wall time', `${s.seconds.toFixed(1)} s`],
    ['throughput', `${Math.round(s.eventsPerSecond).toLocaleString('en-US')} events/s`],
    ['recommendations', s.recommendations.toLocaleString('en-US')],
    ['latency p50 / p99 (batch received → recommendation)', `${s.latencyP50Ms.toFixed(1)} ms / ${s.latencyP99Ms.toFixed(1)} ms`],
    ['dead letters', s.deadLetters.toLocaleString('en-US')],
    [`streaming hit@10 (${s.hitCases.toLocaleString('en-US')} cases)`, s.hitRate.toFixed(3)],
    ['  popularity baseline, same cases', s.popularityHitRate.toFixed(3)],
    ['recommendations written to', out],
  ];
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
  process.stdout.write(`\nstarstream demo summary\n${rows.map(([k, v]) => `  ${k.padEnd(width)}  ${v}`).join('\n')}\n`);
}
