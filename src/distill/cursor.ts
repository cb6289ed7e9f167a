import { existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { z } from 'zod';
import { FatalError } from '../errors/index.ts';
import { writeAtomically } from '../util/files.ts';
import type { SourceState } from './sources.ts';

/**
 * The loop's memory: which data-set parts (and which version of the case file) the last completed run used,
 * in `<stateDir>/cursor.json`, written through a temp file and a rename. Final parts never change once the
 * writer lists them, so a part is identified by its name and record count; the case file, which `cases
 * export` rewrites whole, by a hash of its lines.
 *
 * The cursor moves only when a run got as far as a decision on a trained challenger (published, rejected by
 * the gate, refused by the parity check): a run that skipped (too little data) or failed (the trainer
 * crashed) leaves it, so the next run tries the same data again.
 */

export const CURSOR_FILE = 'cursor.json';

const cursorSchema = z.object({
  version: z.literal(1),
  parts: z.array(z.object({ path: z.string(), split: z.string(), records: z.number().int() })),
  casesFile: z.object({ path: z.string(), sha256: z.string(), records: z.number().int() }).nullable(),
  lastRun: z.object({ runId: z.string(), decision: z.string(), atMs: z.number(), cutoffMs: z.number().nullable() }).nullable(),
});

export type DistillCursor = z.infer<typeof cursorSchema>;

export const EMPTY_CURSOR: DistillCursor = { version: 1, parts: [], casesFile: null, lastRun: null };

export async function readCursor(stateDir: string): Promise<DistillCursor> {
  const path = join(stateDir, CURSOR_FILE);
  if (!existsSync(path)) return EMPTY_CURSOR;
  let json: unknown;
  try {
    json = JSON.parse(await readFile(path, 'utf8'));
  } catch (cause) {
    throw new FatalError('DISTILL_CURSOR_INVALID', `${path} is not JSON (delete it to start over): ${(cause as Error).message}`, { cause });
  }
  const parsed = cursorSchema.safeParse(json);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    throw new FatalError('DISTILL_CURSOR_INVALID', `${path}: ${issue?.path.join('.') ?? ''}: ${issue?.message ?? 'invalid'} (delete it to start over)`);
  }
  return parsed.data;
}

export async function writeCursor(stateDir: string, cursor: DistillCursor): Promise<void> {
  await writeAtomically(join(stateDir, CURSOR_FILE), `${JSON.stringify(cursor, null, 2)}\n`);
}

export interface NewData {
  /** Parts the cursor has not seen (kept and rejected). */
  readonly parts: readonly { readonly path: string; readonly split: string; readonly records: number }[];
  /** The case file is new or its content changed since the last run. */
  readonly casesChanged: boolean;
  readonly any: boolean;
}

export function newSince(cursor: DistillCursor, state: SourceState): NewData {
  const seen = new Set(cursor.parts.map((p) => `${p.path}#${p.records}`));
  const parts = state.parts.filter((p) => !seen.has(`${p.path}#${p.records}`)).map((p) => ({ path: p.path, split: p.split, records: p.records }));
  const casesChanged = state.casesFile !== null && state.casesFile.sha256 !== cursor.casesFile?.sha256;
  return { parts, casesChanged, any: parts.length > 0 || casesChanged };
}

/** The cursor after a run that used `state`. */
export function advance(state: SourceState, lastRun: NonNullable<DistillCursor['lastRun']>): DistillCursor {
  return {
    version: 1,
    parts: state.parts.map((p) => ({ path: p.path, split: p.split, records: p.records })),
    casesFile: state.casesFile,
    lastRun,
  };
}
