import { cpSync, mkdtempSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { silentLogger } from '../../src/logging/logger.ts';
import { loadCstTemplates } from '../../src/cst/index.ts';
import { loadPromptSpec } from '../../src/star/prompt/spec.ts';
import type { StarRegistryOptions } from '../../src/star/registry/registry.ts';

/** The committed tiny STAR model (train/scripts/make-fixture.sh). */
export const FIXTURE_MODEL = fileURLToPath(new URL('../fixtures/star-tiny/', import.meta.url));
export const VECTORS_FILE = fileURLToPath(new URL('../fixtures/prompt-vectors.jsonl', import.meta.url));

/** A temporary registry holding the fixture as the given versions; `CURRENT` names the first. */
export function tempRegistry(versions: readonly string[]): { dir: string; cleanup: () => void } {
  const dir = mkdtempSync(join(tmpdir(), 'star-registry-'));
  for (const v of versions) copyModel(dir, v);
  if (versions[0]) point(dir, versions[0]);
  return { dir, cleanup: () => rmSync(dir, { recursive: true, force: true }) };
}

/** Copies the fixture into `registry/version` with that version in its manifest. */
export function copyModel(registry: string, version: string): string {
  const target = join(registry, version);
  cpSync(FIXTURE_MODEL, target, { recursive: true });
  editManifest(target, (m) => ({ ...m, version }));
  return target;
}

export function editManifest(modelDir: string, edit: (m: Record<string, unknown>) => Record<string, unknown>): void {
  const path = join(modelDir, 'star.json');
  writeFileSync(path, JSON.stringify(edit(JSON.parse(readFileSync(path, 'utf8')) as Record<string, unknown>), null, 2));
}

/** Points `CURRENT` at `version` the way a publisher should: write a temp file, rename it. */
export function point(registry: string, version: string): void {
  const tmp = join(registry, `.CURRENT.${process.pid}.tmp`);
  writeFileSync(tmp, `${version}\n`);
  // Atomic on one filesystem: a reader sees the old or the new pointer, never half of one.
  renameSync(tmp, join(registry, 'CURRENT'));
}

export function registryOptions(dir: string, extra: Partial<StarRegistryOptions> = {}): StarRegistryOptions {
  return {
    dir,
    spec: loadPromptSpec(),
    cstTemplateVersion: loadCstTemplates().version,
    pollMs: 0,
    parityTolerance: 1e-4,
    retireGraceMs: 5_000,
    logger: silentLogger(),
    ...extra,
  };
}
