import { mkdirSync, writeFileSync } from 'node:fs';
import { pathToFileURL } from 'node:url';
import { availableParallelism, totalmem } from 'node:os';
import { join } from 'node:path';

/** Prints a benchmark's rows as a table and saves them (JSON + Markdown) under bench/results/. */

export type Row = Readonly<Record<string, string | number>>;

export const RESULTS_DIR = new URL('./results/', import.meta.url).pathname;

export function table(rows: readonly Row[]): string {
  if (rows.length === 0) return '(no rows)\n';
  const cols = [...new Set(rows.flatMap((r) => Object.keys(r)))];
  const cell = (v: string | number | undefined): string => (typeof v === 'number' ? formatNumber(v) : (v ?? ''));
  const widths = cols.map((c) => Math.max(c.length, ...rows.map((r) => cell(r[c]).length)));
  const line = (vals: string[]): string => `| ${vals.map((v, i) => v.padEnd(widths[i]!)).join(' | ')} |`;
  return [line(cols), line(widths.map((w) => '-'.repeat(w))), ...rows.map((r) => line(cols.map((c) => cell(r[c]))))].join('\n') + '\n';
}

function formatNumber(v: number): string {
  if (Number.isInteger(v)) return v.toLocaleString('en-US');
  return Math.abs(v) >= 100 ? v.toFixed(0) : Math.abs(v) >= 1 ? v.toFixed(2) : v.toFixed(4);
}

export function save(name: string, title: string, rows: readonly Row[], meta: Record<string, unknown>): void {
  mkdirSync(RESULTS_DIR, { recursive: true });
  const measuredAt = new Date().toISOString();
  writeFileSync(join(RESULTS_DIR, `${name}.json`), `${JSON.stringify({ title, measuredAt, ...meta, rows }, null, 2)}\n`);
  writeFileSync(join(RESULTS_DIR, `${name}.md`), `# ${title}\n\nMeasured ${measuredAt}. ${String(meta.machine ?? '')}\n\n${table(rows)}`);
  process.stdout.write(`\n${title}\n${table(rows)}saved bench/results/${name}.{json,md}\n`);
}

export function machine(): string {
  return `node ${process.version}, ${process.platform}/${process.arch}, ${availableParallelism()} cores, ${Math.round(totalmem() / 2 ** 30)} GiB`;
}

/** Runs `main` when the module at `moduleUrl` is the script node was started with: benchmarks double as scripts. */
export function runAsScript(moduleUrl: string, main: () => Promise<void>): void {
  if (!process.argv[1] || moduleUrl !== pathToFileURL(process.argv[1]).href) return;
  main().catch((err: unknown) => {
    process.stderr.write(`${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
    process.exit(1);
  });
}

/** Calls `use` with `KAFKA_BROKERS`, or with a local broker started for it and stopped after. */
export async function withBrokers(
  use: (brokers: string) => Promise<void>,
  options: { readonly quickJit?: boolean; readonly heapMb?: number } = {},
): Promise<void> {
  if (process.env.KAFKA_BROKERS) return use(process.env.KAFKA_BROKERS);
  const { startLocalBroker } = await import('../scripts/kafka/broker.mjs');
  const broker = await startLocalBroker({ ...options, log: (line: string) => console.error(line) });
  try {
    await use(broker.brokers);
  } finally {
    await broker.stop();
  }
}
