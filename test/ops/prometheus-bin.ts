import { execFile } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';

const FETCH = fileURLToPath(new URL('../../scripts/prometheus/fetch.sh', import.meta.url));

/**
 * The folder holding Debian's `prometheus` and `promtool`, fetched (not installed) into .cache/prometheus by
 * scripts/prometheus/fetch.sh; `{ dir: null, reason }` when they cannot be had here (then tests skip, saying why).
 * .ci/run runs the script first, so CI fails loudly instead of skipping.
 */
export async function prometheusBinDir(): Promise<{ dir: string; reason?: undefined } | { dir: null; reason: string }> {
  try {
    const { stdout } = await promisify(execFile)('bash', [FETCH], { timeout: 240_000 });
    const dir = stdout.trim().split('\n').pop() ?? '';
    return dir ? { dir } : { dir: null, reason: 'fetch.sh printed no folder' };
  } catch (err) {
    const e = err as { stderr?: string; message: string };
    return { dir: null, reason: `scripts/prometheus/fetch.sh failed: ${(e.stderr ?? '').trim() || e.message}` };
  }
}
