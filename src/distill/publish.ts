import { existsSync } from 'node:fs';
import { cp, mkdir, open, readFile, readdir, rename, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { FatalError } from '../errors/index.ts';
import { MODEL_FILES } from '../star/registry/manifest.ts';

/**
 * Reading the champion from, and publishing a challenger into, the model registry directory
 * (`src/star/registry/registry.ts`: version folders and a `CURRENT` file that every serving instance polls).
 *
 * Publishing is atomic for the readers: the model is copied into a hidden temp folder inside the registry
 * (same filesystem, and `CURRENT` can never name it: versions start with a letter or digit), its files are
 * fsynced, it is verified there by the caller (the same load and parity check a serving instance will run),
 * renamed to its version folder, and only then is `CURRENT` replaced through a temp file and a rename. A
 * reader sees the old pointer or the new one, and the new one always names a complete, checked model.
 * Earlier versions stay in the registry (roll back by pointing `CURRENT` at one).
 */

const VERSION = /^[A-Za-z0-9._-]+$/;

/** The registry's serving model: the folder `CURRENT` names; null when there is no registry or pointer yet. */
export async function readChampion(registryDir: string): Promise<{ version: string; dir: string } | null> {
  if (existsSync(join(registryDir, MODEL_FILES.manifest))) {
    throw new FatalError(
      'DISTILL_REGISTRY_SINGLE_MODEL',
      `${registryDir} is a single model directory, not a registry: point distill.registryDir (or ranking.modelDir) at a registry folder`,
    );
  }
  const pointer = join(registryDir, 'CURRENT');
  if (!existsSync(pointer)) return null;
  const version = (await readFile(pointer, 'utf8')).trim();
  if (!VERSION.test(version) || version === '.' || version === '..') {
    throw new FatalError('DISTILL_REGISTRY_INVALID', `${pointer} must name a version folder, got ${JSON.stringify(version.slice(0, 80))}`);
  }
  return { version, dir: join(registryDir, version) };
}

/** A version name not yet in the registry: `base`, else `base-2`, `base-3`, … */
export function freeVersion(registryDir: string, base: string): string {
  let version = base;
  for (let n = 2; existsSync(join(registryDir, version)); n++) version = `${base}-${n}`;
  return version;
}

export async function publishModel(
  registryDir: string,
  modelDir: string,
  version: string,
  verify: (dir: string) => Promise<void>,
  /** False: the version goes into the registry and `CURRENT` stays (a challenger for an online experiment). */
  point = true,
): Promise<{ version: string; dir: string }> {
  if (!VERSION.test(version)) throw new FatalError('DISTILL_VERSION_INVALID', `model version ${JSON.stringify(version)} is not a registry folder name`);
  await mkdir(registryDir, { recursive: true });
  const target = join(registryDir, version);
  if (existsSync(target)) throw new FatalError('DISTILL_VERSION_EXISTS', `${target} exists: a published version is never overwritten`);
  const staging = join(registryDir, `.incoming-${version}-${process.pid}`);
  await rm(staging, { recursive: true, force: true });
  try {
    await cp(modelDir, staging, { recursive: true });
    for (const name of await readdir(staging)) await fsync(join(staging, name), 'r+');
    await verify(staging);
    await rename(staging, target);
  } catch (err) {
    await rm(staging, { recursive: true, force: true });
    throw err;
  }
  await fsync(registryDir, 'r');
  if (point) await writeCurrent(registryDir, version);
  return { version, dir: target };
}

/**
 * Points the registry's `CURRENT` at a version already in it (an online experiment's promoted STAR arm, a
 * roll back by hand): the version folder must hold a model; `CURRENT` is replaced through a temp file and a
 * rename, so readers see the old pointer or the new one. Every serving instance loads it at its next poll.
 */
export async function setChampion(registryDir: string, version: string): Promise<{ version: string; dir: string }> {
  if (!VERSION.test(version) || version === '.' || version === '..') {
    throw new FatalError('DISTILL_VERSION_INVALID', `model version ${JSON.stringify(version)} is not a registry folder name`);
  }
  if (existsSync(join(registryDir, MODEL_FILES.manifest))) {
    throw new FatalError('DISTILL_REGISTRY_SINGLE_MODEL', `${registryDir} is a single model directory, not a registry: it has no CURRENT to point`);
  }
  const dir = join(registryDir, version);
  if (!existsSync(join(dir, MODEL_FILES.manifest))) throw new FatalError('DISTILL_VERSION_MISSING', `${dir} holds no model (${MODEL_FILES.manifest})`);
  await writeCurrent(registryDir, version);
  return { version, dir };
}

async function writeCurrent(registryDir: string, version: string): Promise<void> {
  const tmp = join(registryDir, `.CURRENT.${process.pid}.tmp`);
  await writeFile(tmp, `${version}\n`);
  await fsync(tmp, 'r+');
  await rename(tmp, join(registryDir, 'CURRENT'));
  await fsync(registryDir, 'r');
}

async function fsync(path: string, flags: 'r' | 'r+'): Promise<void> {
  const handle = await open(path, flags);
  try {
    await handle.sync();
  } finally {
    await handle.close();
  }
}
