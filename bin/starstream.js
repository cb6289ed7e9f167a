#!/usr/bin/env node
// Launcher for the `starstream` command. Runs the compiled CLI in dist/ (`npm run build`), which starts in a
// fraction of a second. In a development checkout whose dist/ is missing or older than src/, it runs the
// TypeScript sources through tsx's loader instead (compiled at start, so slower) and says so on stderr.
//   STARSTREAM_FROM_SOURCE=1   always run src/ through tsx (no staleness check)
import { existsSync, readdirSync, statSync } from 'node:fs';
import module from 'node:module';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

// V8's code cache on disk (Node >= 22.1; in os.tmpdir()): later starts skip compiling the CLI and its dependencies.
module.enableCompileCache?.();

const compiled = new URL('../dist/cli/index.js', import.meta.url);
const sources = new URL('../src/cli/index.ts', import.meta.url);

/** Newest modification time (ms) of any file under `dir`. ~200 files: a few milliseconds. */
function newestMtimeMs(dir) {
  let newest = 0;
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name);
    const t = entry.isDirectory() ? newestMtimeMs(path) : statSync(path).mtimeMs;
    if (t > newest) newest = t;
  }
  return newest;
}

/** Why src/ runs instead of dist/ ('' when asked for, no notice), or null to run dist/. */
function sourceReason() {
  if (!existsSync(sources)) return null; // an installed package: dist/ only
  if (process.env.STARSTREAM_FROM_SOURCE === '1') return '';
  if (!existsSync(compiled)) return 'no compiled build in dist/ (`npm run build` makes one)';
  const srcDir = fileURLToPath(new URL('../src', import.meta.url));
  if (newestMtimeMs(srcDir) > statSync(compiled).mtimeMs) return 'dist/ is older than src/ (`npm run build`)';
  return null;
}

const reason = sourceReason();
if (reason === null) {
  if (!existsSync(compiled)) {
    process.stderr.write(
      'starstream: dist/cli/index.js is missing; this copy was packaged without `npm run build`\n',
    );
    process.exit(1);
  }
  await import(compiled.href);
} else {
  if (reason) process.stderr.write(`starstream: ${reason}; running src/ through tsx, slower to start\n`);
  const { register } = await import('tsx/esm/api');
  register();
  await import(sources.href);
}
