#!/usr/bin/env node
// Runs the test suites with node's test runner (through tsx for TypeScript).
//   npm test               unit, contract and integration suites (starts the services they need)
//   npm run test:slow      also the *.slow.test.ts suites (long no-loss runs, kill/restart)
//   npm test -- test/store  only files under the given paths
import { spawn } from 'node:child_process';
import { readdirSync, statSync } from 'node:fs';
import { join, relative } from 'node:path';

const args = process.argv.slice(2);
const slow = args.includes('--slow');
const roots = args.filter((a) => !a.startsWith('--'));

function collect(path, out) {
  const st = statSync(path);
  if (st.isDirectory()) {
    for (const name of readdirSync(path).sort()) collect(join(path, name), out);
  } else if (path.endsWith('.test.ts') && (slow || !path.endsWith('.slow.test.ts'))) {
    out.push(relative(process.cwd(), path));
  }
  return out;
}

const files = (roots.length ? roots : ['test']).flatMap((root) => collect(root, []));
if (files.length === 0) {
  console.error('no test files found');
  process.exit(1);
}

const services = await import('./test-services.mjs').then((m) => m.startServices(files)).catch((err) => {
  console.error(`could not start test services: ${err.stack ?? err}`);
  process.exit(1);
});

const child = spawn(
  process.execPath,
  ['--import', 'tsx', '--test', '--test-concurrency=2', ...files],
  { stdio: 'inherit', env: { ...process.env, ...services.env } },
);
const code = await new Promise((resolve) => child.on('exit', (c, signal) => resolve(c ?? (signal ? 1 : 0))));
await services.stop();
process.exit(code);
