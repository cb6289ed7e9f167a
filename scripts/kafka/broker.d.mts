// Types of broker.mjs, for the TypeScript tests and benchmarks that start a local broker.

export interface LocalBroker {
  /** Bootstrap address, `127.0.0.1:PORT`. */
  readonly brokers: string;
  readonly port: number;
  readonly controllerPort: number;
  readonly dataDir: string;
  readonly running: boolean;
  /** The broker's last log lines. */
  logTail(): string;
  /** Graceful stop; deletes the data dir if startLocalBroker created it. */
  stop(): Promise<void>;
  /** SIGKILL, keeping the data. */
  kill(): Promise<void>;
  /** Starts it again after `kill()`, on the same ports and data; resolves once it serves clients (no-op while running). */
  start(): Promise<void>;
  /** Stop (SIGKILL when `hard`) and start again on the same ports and data. */
  restart(options?: { hard?: boolean }): Promise<void>;
}

export interface LocalBrokerOptions {
  dataDir?: string;
  port?: number;
  controllerPort?: number;
  /** Heap of the broker JVM, MiB (384). */
  heapMb?: number;
  /** C1-only JIT: faster start, less CPU, lower peak throughput (true; benchmarks pass false). */
  quickJit?: boolean;
  log?: (line: string) => void;
}

export function startLocalBroker(options?: LocalBrokerOptions): Promise<LocalBroker>;
export function freePort(): Promise<number>;
