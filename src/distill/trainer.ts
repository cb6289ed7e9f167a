import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { createInterface } from 'node:readline';
import { repoRoot } from '../data/datasets.ts';
import { FatalError } from '../errors/index.ts';

/**
 * Trains the challenger with the Python trainer's `distill` subcommand (`train/`, installed by
 * `train/install.sh` into `train/.venv`; `train/README.md` "Distillation from teacher trajectories"): stage 1
 * on the teacher's kept trajectories plus outcome cases, then stage 2 (GRPO), into a model directory. Spawned
 * like `starstream train` (`src/cli/train.ts`), but its output is read line by line and handed to `onLine`
 * (progress on stderr in the CLI) so the caller also keeps the tail for the error when it fails.
 */

export interface TrainerRequest {
  readonly trajectories: string | null;
  readonly cases: string | null;
  readonly out: string;
  readonly version: string;
  /** The trainer's own JSON report (history, validation, stage-2 reward and KL). */
  readonly report: string;
  /** tiny | cpu | gpu. */
  readonly preset: string;
  /** TrainConfig overrides (`--set key=value`). */
  readonly set: Readonly<Record<string, string | number | boolean | null>>;
  /** @default train/.venv/bin/python */
  readonly python?: string;
}

export type TrainerFn = (request: TrainerRequest, onLine: (line: string) => void) => Promise<void>;

export function distillCommand(req: TrainerRequest): { python: string; args: string[] } {
  const python = req.python ?? join(repoRoot(), 'train', '.venv', 'bin', 'python');
  const args = ['-m', 'starstream_train', 'distill', '--out', resolve(req.out), '--preset', req.preset, '--version', req.version, '--report', resolve(req.report)];
  if (req.trajectories) args.push('--trajectories', resolve(req.trajectories));
  if (req.cases) args.push('--cases', resolve(req.cases));
  const sets = Object.entries(req.set).map(([k, v]) => `${k}=${v === null ? 'none' : String(v)}`);
  if (sets.length > 0) args.push('--set', ...sets);
  return { python, args };
}

/** Runs the trainer; throws `FatalError` `DISTILL_TRAINER_MISSING` or `DISTILL_TRAINER_FAILED` (with its last lines). */
export const runPythonTrainer: TrainerFn = async (req, onLine) => {
  const { python, args } = distillCommand(req);
  if (!existsSync(python)) {
    throw new FatalError('DISTILL_TRAINER_MISSING', `${python} not found: install the trainer with bash train/install.sh (or set distill.python)`);
  }
  // Paths are absolute, so the trainer can run in train/: `-m starstream_train` then works without an install.
  const trainDir = join(repoRoot(), 'train');
  const child = spawn(python, args, { cwd: existsSync(trainDir) ? trainDir : undefined, stdio: ['ignore', 'pipe', 'pipe'] });
  const tail: string[] = [];
  const take = (line: string): void => {
    tail.push(line);
    if (tail.length > 20) tail.shift();
    onLine(line);
  };
  const streams = [child.stdout, child.stderr].map(async (stream) => {
    for await (const line of createInterface({ input: stream, crlfDelay: Infinity })) take(line);
  });
  const exit = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((ok, fail) => {
    child.once('error', fail);
    child.once('close', (code, signal) => ok({ code, signal }));
  });
  const [{ code, signal }] = await Promise.all([exit, ...streams]);
  if (code !== 0) {
    throw new FatalError(
      'DISTILL_TRAINER_FAILED',
      `trainer exited with ${signal ?? `code ${code}`}: ${python} ${args.join(' ')}\n${tail.map((l) => `  | ${l}`).join('\n')}`,
    );
  }
};
