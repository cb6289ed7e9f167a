import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { join } from 'node:path';
import { before, describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { prometheusBinDir } from './prometheus-bin.ts';

const RULES_DIR = fileURLToPath(new URL('../../deploy/prometheus/', import.meta.url));
const run = promisify(execFile);

describe('promtool on deploy/prometheus', () => {
  let promtool: string | null = null;
  let skipReason = '';
  before(async () => {
    const bin = await prometheusBinDir();
    if (bin.dir !== null) promtool = join(bin.dir, 'promtool');
    else {
      skipReason = bin.reason;
      console.log(`# promtool unavailable, skipping: ${bin.reason}`);
    }
  });

  test('check rules', async (t) => {
    if (!promtool) return t.skip(skipReason);
    const { stdout } = await run(promtool, ['check', 'rules', 'alerts.yml'], { cwd: RULES_DIR });
    assert.match(stdout, /SUCCESS: \d+ rules found/);
  });

  test('check config (the compose Prometheus config)', async (t) => {
    if (!promtool) return t.skip(skipReason);
    // Relative rule_files resolve beside the config; compose mounts both into /etc/prometheus.
    const { stdout, stderr } = await run(promtool, ['check', 'config', 'prometheus.yml'], { cwd: RULES_DIR });
    assert.match(`${stdout}${stderr}`, /SUCCESS/);
  });

  test('unit tests of the alerts', async (t) => {
    if (!promtool) return t.skip(skipReason);
    const { stdout } = await run(promtool, ['test', 'rules', 'alerts.test.yml', 'alerts.long.test.yml'], { cwd: RULES_DIR, timeout: 120_000 });
    assert.doesNotMatch(stdout, /FAILED/);
    assert.equal(stdout.match(/SUCCESS/g)?.length, 2, stdout);
  });
});
