import type { Config } from '../config/schema.ts';
import type { Interaction } from '../domain/events.ts';
import { readCatalogue } from '../data/catalogue.ts';
import { readOwnFile, type OwnFile } from '../data/import-file.ts';
import { describeMapping } from '../data/mapping.ts';
import { PROBLEM_KINDS, type Problem } from '../data/problems.ts';
import { TABLE_EXTENSIONS, tableFormat } from '../data/table.ts';
import { validateInteraction } from '../stages/ingest/validate.ts';
import type { OwnDataOptions } from './replay.ts';
import { pathKind } from './sources.ts';
import { InputError } from './usage.ts';

/**
 * `starstream validate FILE [--map …] [--time-format F] [--catalogue FILE]`: reads your own interaction file
 * as the import would and reports what is wrong before it runs: rows that cannot be read, bad values (what the
 * pipeline's ingest would refuse included), rows out of time order, duplicate rows and event ids, item ids the
 * catalogue lacks, and the catalogue's own problems; each kind with its count, first lines and first message.
 * Exit 0 when there is nothing to report, 2 when there is (the report is on stdout either way).
 */

export async function validateCommand(config: Config, path: string, own: OwnDataOptions, replayFlags: string): Promise<number> {
  const kind = await pathKind(path);
  if (kind === 'missing') throw new InputError(`validate: no such file ${path}`);
  if (kind !== 'file') throw new InputError(`validate: ${path} is not a file; validate reads a ${TABLE_EXTENSIONS.join(', ')} file of interactions`);
  if (!tableFormat(path)) throw new InputError(`validate: ${path}: validate reads a ${TABLE_EXTENSIONS.join(', ')} file of interactions`);
  if (own.catalogue && (await pathKind(own.catalogue)) !== 'file') throw new InputError(`validate --catalogue: no such file ${own.catalogue}`);
  const catalogue = own.catalogue ? await readCatalogue(own.catalogue) : null;
  const limits = config.pipeline;
  const file = await readOwnFile(path, {
    map: own.map ?? {},
    timeFormat: own.timeFormat ?? 'auto',
    catalogue,
    check: (e: Interaction) => void validateInteraction(e, { nowMs: Date.now(), maxEventAgeMs: limits.maxEventAgeMs, maxFutureSkewMs: limits.maxFutureSkewMs }),
  });
  const problems = [...file.problems.list(), ...(catalogue?.problems.list() ?? [])];
  const clean = problems.length === 0 && file.events.length > 0;
  process.stdout.write(validationReport(file, problems, catalogue ? { path: catalogue.path, items: catalogue.entries.size } : null, `starstream replay ${path}${replayFlags}`));
  return clean ? 0 : 2;
}

/** The report `validate` prints. */
export function validationReport(file: OwnFile, problems: readonly Problem[], catalogue: { path: string; items: number } | null, replayCommand: string): string {
  const n = (x: number): string => x.toLocaleString('en-US');
  const lines = [`starstream validate ${file.path}`];
  if (file.mapping) lines.push(`  columns    ${describeMapping(file.mapping)}`);
  const span = file.span ? `, ${new Date(file.span.firstMs).toISOString()} to ${new Date(file.span.lastMs).toISOString()}` : '';
  lines.push(`  rows       ${n(file.rows)}: ${n(file.events.length)} usable events, ${n(file.users)} users, ${n(file.items)} items${span}`);
  if (catalogue) lines.push(`  catalogue  ${catalogue.path}: ${n(catalogue.items)} items`);
  if (file.rows === 0) {
    lines.push('result: the file holds no rows');
    return `${lines.join('\n')}\n`;
  }
  if (problems.length === 0) {
    lines.push(`result: no problems; \`${replayCommand}\` imports it (--serve keeps the API up after it)`);
    return `${lines.join('\n')}\n`;
  }
  lines.push('problems:');
  const width = Math.max(...problems.map((p) => PROBLEM_KINDS[p.kind].length));
  for (const p of problems) {
    const more = p.count > p.lines.length ? ', …' : '';
    lines.push(`  ${PROBLEM_KINDS[p.kind].padEnd(width)}  ${n(p.count).padStart(7)}  line${p.lines.length > 1 ? 's' : ''} ${p.lines.join(', ')}${more}`);
    lines.push(`  ${''.padEnd(width)}           first: ${p.first}`);
  }
  const skipped = problems.filter((p) => p.kind === 'unreadable' || p.kind === 'bad-value').reduce((s, p) => s + p.count, 0);
  const sorted = problems.some((p) => p.kind === 'time-order');
  const what = [skipped > 0 ? `skips the ${n(skipped)} rows it cannot use` : '', sorted ? 'sorts the rest by time' : ''].filter(Boolean).join(' and ');
  lines.push(
    file.events.length === 0
      ? 'result: no usable event; fix the mapping (--map, --time-format) or the file'
      : `result: ${problems.length} kind${problems.length > 1 ? 's' : ''} of problem; \`${replayCommand}\` ${what || 'imports it as it is'}`,
  );
  return `${lines.join('\n')}\n`;
}
