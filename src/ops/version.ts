import { readFileSync } from 'node:fs';

/** The `version` of the package.json starstream runs from (for `starstream_build_info` and the API). */
export function packageVersion(): string {
  const pkg = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version?: unknown };
  if (typeof pkg.version !== 'string') throw new Error('package.json has no version');
  return pkg.version;
}
