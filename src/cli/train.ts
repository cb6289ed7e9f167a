import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { repoRoot } from '../data/datasets.ts';
import { FatalError } from '../errors/index.ts';
import { InputError } from './usage.ts';

/**
 * `starstream train`: a thin wrapper around the Python trainer (`train/`, installed by `train/install.sh`
 * into `train/.venv`): `python -m starstream_train train --cases … --out … --preset …`. Output streams through;
 * resolves with the trainer's exit code.
 */
export interface TrainOptions {
  readonly cases: string;
  readonly out: string;
  /** tiny | cpu | gpu. @default 'cpu' */
  readonly preset?: string;
  readonly version?: string;
  /** TrainConfig overrides, e.g. `{ epochs: 2, max_length: 64 }`. */
  readonly set?: Readonly<Record<string, string | number | boolean | null>>;
  /** @default train/.venv/bin/python */
  readonly python?: string;
}

export function trainCommand(opts: TrainOptions): { python: string; args: string[] } {
  const python = opts.python ?? join(repoRoot(), 'train', '.venv', 'bin', 'python');
  const args = ['-m', 'starstream_train', 'train', '--cases', opts.cases, '--out', opts.out, '--preset', opts.preset ?? 'cpu'];
  if (opts.version) args.push('--version', opts.version);
  const sets = Object.entries(opts.set ?? {}).map(([k, v]) => `${k}=${v === null ? 'none' : String(v)}`);
  if (sets.length > 0) args.push('--set', ...sets);
  return { python, args };
}

export async function train(opts: TrainOptions): Promise<number> {
  const { python, args } = trainCommand(opts);
  // The user's own mistakes first: they are answered the same with or without the trainer installed.
  if (!existsSync(opts.cases)) {
    throw new InputError(`train --cases: no such file ${opts.cases} (write one with \`starstream cases export\`)`);
  }
  if (!existsSync(python)) {
    throw new FatalError('TRAINER_MISSING', `${python} not found: install the trainer with bash train/install.sh`);
  }
  const child = spawn(python, args, { stdio: 'inherit' });
  return new Promise((resolve, reject) => {
    child.on('error', reject);
    child.on('exit', (code, signal) => resolve(code ?? (signal ? 1 : 0)));
  });
}
