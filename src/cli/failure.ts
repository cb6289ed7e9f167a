import { ConfigError, StarstreamError } from '../errors/index.ts';
import type { Logger } from '../logging/logger.ts';
import { InputError, UsageError } from './usage.ts';

/** Codes of `FatalError`s that are the user's input, not a failure at run time: exit 2 like a usage error. */
const INPUT_CODES: ReadonlySet<string> = new Set([
  'CONFIG_INVALID',
  'CONFIG_SIDE_STREAM',
  'DATASET_MISSING',
  'DATASET_UNKNOWN_FORMAT',
  'DATASET_MALFORMED',
  'DATASET_CORRUPT',
  'DATASET_UNREADABLE',
  'JSONL_UNREADABLE',
  'CSV_UNREADABLE',
  'TABLE_UNREADABLE',
  'TABLE_HEADER',
  'IMPORT_FORMAT',
  'MAPPING_INVALID',
  'MAPPING_COLUMN',
  'CATALOGUE_FORMAT',
  'CATALOGUE_COLUMNS',
  'TRAINER_MISSING',
  'DISTILL_TRAINER_MISSING',
  'DISTILL_CASES_MISSING',
]);

/**
 * Prints one line for the error and returns the exit code (see the header): 2 for usage, config and input
 * errors, 1 for the rest. Only an error that no module classified (a bug) prints its stack.
 */
export function reportFailure(err: unknown, logger?: Logger): number {
  if (err instanceof UsageError) {
    const help = err.command ? `starstream ${err.command} --help` : 'starstream --help';
    process.stderr.write(`starstream: ${err.message} (see ${help})\n`);
    return 2;
  }
  if (err instanceof InputError || err instanceof ConfigError || (err instanceof StarstreamError && INPUT_CODES.has(err.code))) {
    process.stderr.write(`starstream: ${err.message}\n`);
    return 2;
  }
  logger?.fatal({ err }, 'failed');
  if (err instanceof StarstreamError) {
    process.stderr.write(`starstream: ${err.message} [${err.code}]\n`);
  } else if ((err as NodeJS.ErrnoException | null)?.code === 'EADDRINUSE') {
    const e = err as NodeJS.ErrnoException & { port?: number };
    process.stderr.write(`starstream: port ${e.port ?? ''} is in use: stop the other process or set STARSTREAM_OPS__PORT (0 = any free port)\n`);
  } else {
    process.stderr.write(`starstream: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
  }
  return 1;
}
