/**
 * The Qdrant server a test file runs against, the same way wherever the file is started:
 *
 * - `QDRANT_URL` (and `QDRANT_API_KEY`) from the environment: what `npm test` sets after starting one
 *   (`scripts/test-services.mjs`);
 * - else, for a file run by itself (`node --import tsx --test test/store/qdrant.test.ts`), one started here by
 *   `scripts/qdrant/server.mjs` (testcontainers, or the binary of `../shared/bin/qdrant`) and stopped after the
 *   file;
 * - else a reason to skip, printed by the test runner. Under CI (`CI` set, not "false" or "0") there is no
 *   skipping: a missing Qdrant is an error, so the file fails instead of passing quietly.
 */
import { after } from 'node:test';
import { provideQdrant } from '../../scripts/qdrant/server.mjs';

export interface QdrantServer {
  readonly url: string;
  readonly apiKey?: string;
}

export type QdrantOrSkip = QdrantServer | { readonly skip: string };

/** Same rule as `inCi()` in scripts/test-services.mjs. */
export function inCi(): boolean {
  const ci = process.env['CI'];
  return ci !== undefined && ci !== '' && ci !== 'false' && ci !== '0';
}

let provided: Promise<QdrantOrSkip> | null = null;

/** Resolves once per file; a server started here is stopped by an `after` hook of the file's root. */
export function qdrantForTests(): Promise<QdrantOrSkip> {
  provided ??= resolveQdrant();
  return provided;
}

async function resolveQdrant(): Promise<QdrantOrSkip> {
  const url = process.env['QDRANT_URL'];
  const apiKey = process.env['QDRANT_API_KEY'];
  if (url) return { url, ...(apiKey ? { apiKey } : {}) };
  try {
    const qdrant = await provideQdrant();
    after(() => qdrant.stop());
    return { url: qdrant.url, ...(qdrant.apiKey ? { apiKey: qdrant.apiKey } : {}) };
  } catch (err) {
    const why = `no Qdrant: QDRANT_URL is unset and none could be started (${(err as Error).message})`;
    if (inCi()) throw new Error(`${why}; CI is set, so the Qdrant suites fail rather than skip`);
    return { skip: why };
  }
}
