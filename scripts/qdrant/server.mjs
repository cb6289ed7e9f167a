// A real Qdrant server for tests and benchmarks, from wherever one can come (see provideQdrant):
//
//   const qdrant = await provideQdrant({ log });   // { url, apiKey?, source, stop() }
//   ...                                            // QdrantClient / store.qdrant.url = qdrant.url
//   await qdrant.stop();                           // stops what it started (nothing for QDRANT_URL)
//
// The local server is the binary of ../shared/bin/qdrant (relative to the repo root; QDRANT_BIN overrides it),
// a Qdrant 1.17.1 built with opt-level=1 (../shared/bin/README.md): run on loopback, on free HTTP and gRPC
// ports, with storage, snapshots and its `.qdrant-initialized` marker (written to the working directory) in a
// throwaway dir under os.tmpdir() that stop() deletes. If this Node process dies without stopping it (even by
// SIGKILL), the server goes too: it runs under a small shell that stops it when its stdin, a pipe from this
// process, closes (the same wrapper as scripts/kafka/broker.mjs).
import { existsSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { request } from 'node:http';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { setTimeout } from 'node:timers';
import { fileURLToPath } from 'node:url';
import { freePort, GroupProcess, HOST, started } from '../local-process.mjs';

export { freePort };

/** The image testcontainers runs when a Docker engine answers: the same version as the binary. */
export const QDRANT_IMAGE = 'qdrant/qdrant:v1.17.1';
const READY_TIMEOUT_MS = 30_000;
/** Qdrant flushes its WAL and segments on SIGTERM; a test server's data is thrown away, so this stays short. */
const STOP_GRACE_MS = 5_000;
const REPO_ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '../..');

/** Where the local binary is: QDRANT_BIN, else ../shared/bin/qdrant beside the repository. */
export function qdrantBinary() {
  return process.env.QDRANT_BIN ?? resolve(REPO_ROOT, '../shared/bin/qdrant');
}

/**
 * A Qdrant for this run, from the first of:
 *   1. QDRANT_URL (and QDRANT_API_KEY), if set: used as it is, nothing to stop;
 *   2. testcontainers (QDRANT_IMAGE), only if a Docker engine answers within a second;
 *   3. the local binary (qdrantBinary()).
 * Throws when none can be had, saying why each was not used.
 * @param {{ log?: (line: string) => void }} [options]
 */
export async function provideQdrant(options = {}) {
  const log = options.log ?? (() => {});
  if (process.env.QDRANT_URL) {
    return {
      url: process.env.QDRANT_URL,
      ...(process.env.QDRANT_API_KEY ? { apiKey: process.env.QDRANT_API_KEY } : {}),
      source: 'QDRANT_URL',
      stop: async () => {},
    };
  }
  if (await dockerAnswers()) {
    try {
      return await startQdrantContainer();
    } catch (err) {
      log(`testcontainers could not start Qdrant (${err.message}); using the local binary`);
    }
  }
  const started = Date.now();
  const server = await startQdrantServer();
  return {
    url: server.url,
    source: `local binary ${server.bin}, started in ${Date.now() - started} ms`,
    stop: () => server.stop(),
  };
}

/**
 * Starts the local binary and resolves once /readyz answers 200.
 * @param {{ bin?: string, httpPort?: number, grpcPort?: number, readyTimeoutMs?: number,
 *   log?: (line: string) => void }} [options]
 */
export async function startQdrantServer(options = {}) {
  const bin = options.bin ?? qdrantBinary();
  if (!existsSync(bin)) {
    throw new Error(
      `no Qdrant binary at ${bin} (set QDRANT_BIN, QDRANT_URL, or lay ../shared/bin/qdrant beside the repository)`,
    );
  }
  const server = new LocalQdrant({
    bin,
    dir: await mkdtemp(join(tmpdir(), 'starstream-qdrant-')),
    httpPort: options.httpPort ?? (await freePort()),
    grpcPort: options.grpcPort ?? (await freePort()),
    readyTimeoutMs: options.readyTimeoutMs ?? READY_TIMEOUT_MS,
    log: options.log ?? (() => {}),
  });
  return started(server);
}

class LocalQdrant {
  #opts;
  #process = new GroupProcess('starstream-qdrant');

  constructor(opts) {
    this.#opts = opts;
    this.bin = opts.bin;
    this.dir = opts.dir;
    this.httpPort = opts.httpPort;
    this.grpcPort = opts.grpcPort;
    this.url = `http://${HOST}:${opts.httpPort}`;
  }

  get running() {
    return this.#process.running;
  }

  /** The server's last log lines (WARN and above unless QDRANT__LOG_LEVEL says otherwise). */
  logTail() {
    return this.#process.logTail();
  }

  async start() {
    if (this.running) return;
    const startedAt = Date.now();
    this.#process.start(this.bin, [], {
      // The server writes `.qdrant-initialized` to its working directory: keep it in the throwaway dir.
      cwd: this.dir,
      env: {
        ...process.env,
        QDRANT__SERVICE__HOST: HOST,
        QDRANT__SERVICE__HTTP_PORT: String(this.httpPort),
        QDRANT__SERVICE__GRPC_PORT: String(this.grpcPort),
        QDRANT__STORAGE__STORAGE_PATH: join(this.dir, 'storage'),
        QDRANT__STORAGE__SNAPSHOTS_PATH: join(this.dir, 'snapshots'),
        QDRANT__TELEMETRY_DISABLED: 'true',
        QDRANT__LOG_LEVEL: process.env.QDRANT__LOG_LEVEL ?? 'WARN',
      },
    });
    await this.#waitReady(startedAt + this.#opts.readyTimeoutMs);
    this.#opts.log(`local Qdrant ready on ${this.url} after ${Date.now() - startedAt} ms`);
  }

  /** SIGTERM, SIGKILL after a grace; then deletes the throwaway dir. Idempotent. */
  async stop() {
    await this.#process.stop({ how: 'SIGTERM', graceMs: STOP_GRACE_MS });
    await rm(this.dir, { recursive: true, force: true });
  }

  async #waitReady(deadline) {
    let exited = false;
    void this.#process.exited.then(() => (exited = true));
    const fail = (why) => new Error(`local Qdrant (${this.bin}) ${why}:\n${this.logTail()}`);
    for (;;) {
      if (exited) throw fail('exited during startup');
      if ((await httpStatus({ host: HOST, port: this.httpPort, path: '/readyz' })) === 200) return;
      if (Date.now() > deadline)
        throw fail(`was not ready on ${this.url} within ${this.#opts.readyTimeoutMs} ms`);
      await new Promise((r) => setTimeout(r, 50));
    }
  }
}

async function startQdrantContainer() {
  const { GenericContainer, Wait } = await import('testcontainers');
  const started = Date.now();
  const container = await new GenericContainer(QDRANT_IMAGE)
    .withExposedPorts(6333)
    .withEnvironment({ QDRANT__TELEMETRY_DISABLED: 'true' })
    .withWaitStrategy(Wait.forHttp('/readyz', 6333).forStatusCode(200))
    .withStartupTimeout(120_000)
    .start();
  return {
    url: `http://${container.getHost()}:${container.getMappedPort(6333)}`,
    source: `testcontainers ${QDRANT_IMAGE}, started in ${Date.now() - started} ms`,
    stop: async () => {
      await container.stop();
    },
  };
}

/** The status of a GET, or 0 when nothing answers within a second. */
function httpStatus(target) {
  return new Promise((resolveStatus) => {
    const req = request({ ...target, timeout: 1_000 }, (res) => {
      res.resume();
      resolveStatus(res.statusCode ?? 0);
    });
    req.on('timeout', () => req.destroy());
    req.on('error', () => resolveStatus(0));
    req.end();
  });
}

/** True when a Docker engine answers /_ping within a second (DOCKER_HOST over tcp or unix, or the default socket). */
export async function dockerAnswers() {
  const host = process.env.DOCKER_HOST ?? 'unix:///var/run/docker.sock';
  let target;
  if (host.startsWith('unix://')) {
    const socketPath = host.slice('unix://'.length);
    if (!existsSync(socketPath)) return false;
    target = { socketPath };
  } else if (host.startsWith('tcp://')) {
    const url = new URL(host.replace('tcp://', 'http://'));
    target = { host: url.hostname, port: Number(url.port || 2375) };
  } else {
    return false;
  }
  return (await httpStatus({ ...target, path: '/_ping' })) === 200;
}
