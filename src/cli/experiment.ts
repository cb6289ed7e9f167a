import type { Config } from '../config/schema.ts';
import { ConfigError, FatalError } from '../errors/index.ts';
import type { ArmSummary, ChallengerReport } from '../experiments/decide.ts';
import { readLatestReport, type AppliedReport } from '../experiments/runtime.ts';

/**
 * `starstream experiment status`: the per-arm table of the configured experiment (`experiment` in the config)
 * from its latest report (`<experiment.stateDir>/<name>/latest.json`, written by the running pipeline at every
 * look and at shutdown): outcomes, hit@K with its always-valid confidence interval, NDCG@K, latency and errors,
 * and each challenger's difference from the champion with its interval and verdict.
 */
export function experimentStatus(config: Config): string {
  const experiment = config.experiment;
  if (!experiment) throw new ConfigError('experiment', 'no experiment is configured (set experiment.* in the config)');
  const report = readLatestReport(experiment.stateDir, experiment.name);
  if (!report) {
    throw new FatalError('EXPERIMENT_NO_REPORT', `no report of experiment ${experiment.name} under ${experiment.stateDir} yet: a running pipeline writes one every experiment.lookEveryMs`);
  }
  return formatStatus(report);
}

export function formatStatus(report: AppliedReport): string {
  const k = report.settings.k;
  const lines = [
    `experiment ${report.experiment}: ${report.decision}${report.arm ? ` ${report.arm}` : ''} after ${report.outcomes} outcomes (look at ${new Date(report.atMs).toISOString()})`,
    report.concludedWith ? `concluded: ${report.concludedWith} serves every user` : `running; ${report.reason}`,
  ];
  // Reports written before instances were summed have no list.
  const instances = report.instances ?? [];
  if (instances.length > 1) lines.push(`counts summed over ${instances.length} instances: ${instances.join(', ')}`);
  lines.push('');
  const header = ['arm', 'role', 'serving', 'outcomes', `hit@${k}`, `hit@${k} interval`, `NDCG@${k}`, 'p50 ms', 'p99 ms', 'errors', `Δ hit@${k} vs champion [interval]`, 'verdict'];
  const rows: string[][] = [row(report.champion, 'champion', report.serving[report.champion.arm] ?? true)];
  for (const c of report.challengers) rows.push(challengerRow(c, report.serving[c.arm] ?? false));
  if (report.holdout) rows.push(row(report.holdout, 'holdout', true));
  lines.push(...table([header, ...rows]));
  lines.push('', `intervals: always-valid ${pct(1 - report.settings.alpha)} confidence sequences (mSPRT, mixture sd ${report.settings.mixtureSd}), valid at every look`);
  for (const a of report.applied) lines.push(`applied: ${a.action} ${a.arm} (${a.verdict}${a.code ? ` ${a.code}` : ''})${a.note ? `: ${a.note}` : ''}`);
  return `${lines.join('\n')}\n`;
}

function row(s: ArmSummary, role: string, serving: boolean): string[] {
  return [
    s.arm,
    role,
    serving ? 'yes' : 'no',
    String(s.outcomes),
    pct(s.hitRate),
    `[${pct(s.hitRateInterval[0])}, ${pct(s.hitRateInterval[1])}]`,
    s.ndcg === null ? '–' : s.ndcg.toFixed(4),
    ms(s.p50LatencyMs),
    ms(s.p99LatencyMs),
    s.errorRate === null ? '–' : `${s.errors} (${pct(s.errorRate)})`,
    '',
    '',
  ];
}

function challengerRow(c: ChallengerReport, serving: boolean): string[] {
  const r = row(c, 'challenger', serving);
  r[10] = `${signed(c.test.difference)} [${signed(c.test.lower)}, ${signed(c.test.upper)}]`;
  r[11] = `${c.verdict} ${c.code}`;
  return r;
}

function table(rows: readonly string[][]): string[] {
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => (r[i] ?? '').length)));
  return rows.map((r) => r.map((cell, i) => cell.padEnd(widths[i]!)).join('  ').trimEnd());
}

function pct(v: number | null): string {
  return v === null || !Number.isFinite(v) ? '–' : `${(v * 100).toFixed(2)}%`;
}

function ms(v: number | null): string {
  return v === null ? '–' : v.toFixed(2);
}

function signed(v: number | null): string {
  if (v === null || !Number.isFinite(v)) return '–';
  return `${v >= 0 ? '+' : ''}${(v * 100).toFixed(2)} pp`;
}
