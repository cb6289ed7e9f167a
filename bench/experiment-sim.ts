import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { createRng } from '../src/data/random.ts';
import { lineChartSvg } from '../src/eval/plot.ts';
import { compileExperiment, type Experiment } from '../src/experiments/definition.ts';
import { simulateExperiment, type SimulationResult } from '../src/experiments/simulate.ts';
import { machine, RESULTS_DIR, runAsScript, save, type Row } from './report.ts';

/**
 * The online experiment in a seeded world where each arm's true hit@10 is known (src/experiments/simulate.ts):
 * how soon a challenger truly better or worse by 3 points is promoted or rolled back, how often an A/A
 * experiment (no true difference) promotes, and, for contrast, how often a classic fixed-sample z-test does
 * when it is looked at after every event. Draws one experiment's running estimate, its always-valid band and
 * the decision point to bench/results/experiment-sim.svg; the table goes to bench/results/experiment-sim.{json,md}.
 *
 * `node --import tsx bench/experiment-sim.ts [runs]` (default 200 runs per scenario).
 */

const BASE = 0.2;
const MARGIN = 0.03;
const MAX_OUTCOMES = 40_000;

function experiment(maxOutcomes: number): Experiment {
  return compileExperiment({
    name: 'star-vs-baseline',
    salt: 'sim',
    arms: [
      { name: 'baseline', scorer: { kind: 'baseline' }, share: 0.5 },
      { name: 'star', scorer: { kind: 'star', version: 'star-2' }, share: 0.5 },
    ],
    test: { alpha: 0.05, mixtureSd: 0.02, minOutcomesPerArm: 1_000, maxOutcomes },
  });
}

function scenario(name: string, runs: number, hitRate: number, maxOutcomes: number): Row {
  const e = experiment(maxOutcomes);
  const counts = { promote: 0, rollback: 0, inconclusive: 0 };
  const events: number[] = [];
  for (let seed = 0; seed < runs; seed++) {
    const r = simulateExperiment({ experiment: e, hitRates: { baseline: BASE, star: hitRate }, seed: `${name}-${seed}` });
    if (r.decision === 'continue') continue;
    counts[r.decision]++;
    if (r.decision !== 'inconclusive') events.push(r.events);
  }
  events.sort((a, b) => a - b);
  const at = (q: number): number | string => (events.length ? events[Math.min(events.length - 1, Math.floor(q * events.length))]! : '–');
  return {
    scenario: name,
    'true hit@10 (champion → challenger)': `${BASE.toFixed(2)} → ${hitRate.toFixed(2)}`,
    runs,
    promoted: counts.promote,
    'rolled back': counts.rollback,
    inconclusive: counts.inconclusive,
    'events to decision (median)': at(0.5),
    'p90': at(0.9),
    'max': events.length ? events[events.length - 1]! : '–',
  };
}

/**
 * The mistake the sequential test exists to prevent: a two-sided z-test at α = 0.05 computed after every event
 * (from the same minimum sample on) and stopped at the first "significant" look.
 */
function naivePeeking(runs: number, maxOutcomes: number): Row {
  let promoted = 0;
  let rejected = 0;
  for (let seed = 0; seed < runs; seed++) {
    const rng = createRng(`naive-${seed}`);
    let na = 0;
    let nb = 0;
    let ha = 0;
    let hb = 0;
    for (let n = 1; n <= maxOutcomes; n++) {
      if (rng.bool(0.5)) {
        na++;
        ha += rng.bool(BASE) ? 1 : 0;
      } else {
        nb++;
        hb += rng.bool(BASE) ? 1 : 0;
      }
      if (na < 1_000 || nb < 1_000) continue;
      const pa = ha / na;
      const pb = hb / nb;
      const z = (pb - pa) / Math.sqrt((pa * (1 - pa)) / na + (pb * (1 - pb)) / nb);
      if (Math.abs(z) > 1.96) {
        rejected++;
        if (z > 0) promoted++;
        break;
      }
    }
  }
  return {
    scenario: 'A/A, fixed-sample z-test peeked every event',
    'true hit@10 (champion → challenger)': `${BASE.toFixed(2)} → ${BASE.toFixed(2)}`,
    runs,
    promoted,
    'rolled back': rejected - promoted,
    inconclusive: runs - rejected,
    'events to decision (median)': '–',
    p90: '–',
    max: '–',
  };
}

/** The running hit rates, the challenger's always-valid band (champion + [lower, upper]) and the decision. */
export function experimentSvg(run: SimulationResult): string {
  const points = run.trace.filter((p) => p.events >= 1_000);
  const band = (f: (p: (typeof points)[number]) => number): (readonly [number, number])[] => points.map((p) => [p.events, Math.max(0, f(p))]);
  const top = Math.max(...points.map((p) => p.championRate + p.upper));
  return lineChartSvg({
    title: `Seeded experiment: ${run.decision} ${run.report.arm ?? ''} at ${run.events.toLocaleString('en-US')} events (band: champion + always-valid 95% CS)`,
    xLabel: 'events (joined outcomes, both arms)',
    yLabel: 'hit@10',
    // Legend entries sit 160 px apart in a 760 px chart: short names, and the fifth one shortest.
    series: [
      { name: 'champion (baseline)', points: band((p) => p.championRate) },
      { name: 'challenger (star)', points: band((p) => p.challengerRate) },
      { name: 'band low', points: band((p) => p.championRate + p.lower) },
      { name: 'band high', points: band((p) => p.championRate + p.upper) },
      {
        name: 'stop',
        points: [
          [run.events, 0],
          [run.events, top],
        ],
      },
    ],
  });
}

async function main(): Promise<void> {
  const runs = Number(process.argv[2] ?? 200);
  const example = simulateExperiment({
    experiment: experiment(MAX_OUTCOMES),
    hitRates: { baseline: BASE, star: BASE + MARGIN },
    seed: 'picture-1',
    traceEvery: 100,
  });
  writeFileSync(join(RESULTS_DIR, 'experiment-sim.svg'), experimentSvg(example));
  process.stdout.write(`${example.report.summary}\nwrote bench/results/experiment-sim.svg\n`);
  const rows = [
    scenario('better challenger', runs, BASE + MARGIN, MAX_OUTCOMES),
    scenario('worse challenger', runs, BASE - MARGIN, MAX_OUTCOMES),
    scenario('A/A (mSPRT)', runs * 5, BASE, 20_000),
    naivePeeking(runs * 5, 20_000),
  ];
  save('experiment-sim', 'Online experiment: mSPRT decisions in a seeded simulation', rows, {
    machine: machine(),
    settings: { alpha: 0.05, mixtureSd: 0.02, minOutcomesPerArm: 1_000, maxOutcomes: MAX_OUTCOMES, aaMaxOutcomes: 20_000, lookEvery: 1 },
    example: example.report,
  });
}

runAsScript(import.meta.url, main);
