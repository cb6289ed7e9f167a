// Resolves the Kafka broker's jars into .cache/kafka/libs once (Maven, from pom.xml beside this file) and
// reuses them afterwards. Concurrent callers (parallel test processes) wait on one lock directory.
import { execFile } from 'node:child_process';
import { existsSync, readdirSync } from 'node:fs';
import { mkdir, rename, rm, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { setTimeout } from 'node:timers';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';

const run = promisify(execFile);
const here = fileURLToPath(new URL('.', import.meta.url));
const repoRoot = fileURLToPath(new URL('../../', import.meta.url));
const cacheDir = join(repoRoot, '.cache', 'kafka');
export const KAFKA_LIBS = join(cacheDir, 'libs');
const LOCK = join(cacheDir, '.install-lock');
const STALE_LOCK_MS = 10 * 60_000;

function installed() {
  return existsSync(KAFKA_LIBS) && readdirSync(KAFKA_LIBS).some((f) => /^kafka_2\.13-.*\.jar$/.test(f));
}

/** The Kafka version the cached jars are (from the kafka_2.13 jar's name), or null. */
export function kafkaVersion() {
  if (!existsSync(KAFKA_LIBS)) return null;
  const jar = readdirSync(KAFKA_LIBS).find((f) => /^kafka_2\.13-.*\.jar$/.test(f));
  return jar ? jar.slice('kafka_2.13-'.length, -'.jar'.length) : null;
}

async function checkTools() {
  for (const [tool, args] of [
    ['java', ['-version']],
    ['mvn', ['-v']],
  ]) {
    try {
      await run(tool, args);
    } catch (err) {
      throw new Error(
        `the local Kafka broker needs ${tool} (Java 17+ and Maven 3.8+) on PATH: ${err.message}`,
      );
    }
  }
}

/** Returns the libs folder, downloading the jars first if they are not there yet. */
export async function ensureKafkaLibs({ log = () => {} } = {}) {
  if (installed()) return KAFKA_LIBS;
  await mkdir(cacheDir, { recursive: true });
  await acquireLock();
  try {
    if (installed()) return KAFKA_LIBS;
    await checkTools();
    log(`resolving the Kafka broker jars with Maven into ${KAFKA_LIBS} (once)`);
    const staging = `${KAFKA_LIBS}.partial-${process.pid}`;
    await rm(staging, { recursive: true, force: true });
    await run(
      'mvn',
      [
        '-q',
        '-B',
        '-f',
        join(here, 'pom.xml'),
        'dependency:copy-dependencies',
        `-DoutputDirectory=${staging}`,
        '-DincludeScope=runtime',
      ],
      { maxBuffer: 16 * 1024 * 1024 },
    ).catch((err) => {
      throw new Error(`mvn could not resolve the Kafka jars: ${err.stderr || err.stdout || err.message}`);
    });
    // Renamed into place whole, so an interrupted download never looks installed.
    await rm(KAFKA_LIBS, { recursive: true, force: true });
    await rename(staging, KAFKA_LIBS);
    return KAFKA_LIBS;
  } finally {
    await rm(LOCK, { recursive: true, force: true });
  }
}

async function acquireLock() {
  const deadline = Date.now() + STALE_LOCK_MS;
  for (;;) {
    try {
      await mkdir(LOCK);
      return;
    } catch (err) {
      if (err.code !== 'EEXIST') throw err;
    }
    const age = await stat(LOCK).then(
      (s) => Date.now() - s.mtimeMs,
      () => 0,
    );
    if (age > STALE_LOCK_MS || Date.now() > deadline) {
      await rm(LOCK, { recursive: true, force: true });
      continue;
    }
    await new Promise((r) => setTimeout(r, 250));
  }
}
