// Types of server-time.mjs.

/** One HTTP exchange with Qdrant as `fetch` saw it. */
export interface Exchange {
  readonly method: string;
  readonly path: string;
  /** The request's accept-encoding header (null when fetch adds its own default). */
  readonly acceptEncoding: string | null;
  /** The answer's `content-encoding` header (null: uncompressed). */
  readonly contentEncoding: string | null;
  /** The answer's `time`, in ms; NaN until its body is read (see `settled`) or when it has none. */
  readonly serverMs: number;
}

export interface ServerTimeRecorder {
  /** In request order. */
  readonly exchanges: readonly Exchange[];
  /** Stops recording and puts the previous fetch back. Idempotent. */
  restore(): void;
  /** Resolves once every recorded body has been read. */
  settled(): Promise<void>;
}

export function recordServerTimes(url: string): ServerTimeRecorder;
