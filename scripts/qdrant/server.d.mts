// Types of server.mjs, for the TypeScript tests and benchmarks that need a Qdrant.

/** A Qdrant to use, and how to let go of it. */
export interface ProvidedQdrant {
  /** REST base URL, e.g. `http://127.0.0.1:PORT`. */
  readonly url: string;
  /** Only with QDRANT_URL + QDRANT_API_KEY. */
  readonly apiKey?: string;
  /** Where it came from, for the log line: `QDRANT_URL`, `testcontainers …`, or the binary's path. */
  readonly source: string;
  /** Stops what provideQdrant started; nothing for QDRANT_URL. */
  stop(): Promise<void>;
}

export interface LocalQdrant {
  readonly url: string;
  readonly bin: string;
  readonly dir: string;
  readonly httpPort: number;
  readonly grpcPort: number;
  readonly running: boolean;
  /** The server's last log lines. */
  logTail(): string;
  /** SIGTERM, SIGKILL after a grace; deletes the throwaway dir. Idempotent. */
  stop(): Promise<void>;
}

export interface LocalQdrantOptions {
  /** @default qdrantBinary() */
  bin?: string;
  httpPort?: number;
  grpcPort?: number;
  /** @default 30000 */
  readyTimeoutMs?: number;
  log?: (line: string) => void;
}

export const QDRANT_IMAGE: string;
export function qdrantBinary(): string;
export function freePort(): Promise<number>;
export function provideQdrant(options?: { log?: (line: string) => void }): Promise<ProvidedQdrant>;
export function startQdrantServer(options?: LocalQdrantOptions): Promise<LocalQdrant>;
export function dockerAnswers(): Promise<boolean>;
