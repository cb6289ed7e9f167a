// A long-running local server for tests and benchmarks (the Kafka broker, the Qdrant binary): spawned in a
// process group of its own through a small shell wrapper, so that it dies with the Node process that started
// it, whatever way that process ends, and so that a stop or a kill reaches every process it forked.
import { spawn } from 'node:child_process';
import { createServer } from 'node:net';
import { clearTimeout, setTimeout } from 'node:timers';

export const HOST = '127.0.0.1';
const LOG_LINES_KEPT = 200;

// The wrapper runs the server in the background and watches its own stdin: when the parent dies, the pipe
// closes, `cat` returns, and the server gets SIGTERM. exec 3<&0 keeps that pipe: background jobs of a
// non-interactive shell get /dev/null as stdin.
const WRAPPER = `
exec 3<&0
"$@" <&- &
pid=$!
( cat <&3 >/dev/null; kill -TERM $pid 2>/dev/null ) &
trap 'kill -TERM $pid 2>/dev/null' TERM INT
while kill -0 $pid 2>/dev/null; do wait $pid; done
`;

/** A port the OS says is free now (it may be taken again before use; the server's start then fails loudly). */
export function freePort() {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.unref();
    server.on('error', reject);
    server.listen(0, HOST, () => {
      const { port } = server.address();
      server.close(() => resolve(port));
    });
  });
}

/**
 * Starts `server` (anything with `start()` and `stop()`) and returns it; a start that fails is stopped again
 * (its process and throwaway files gone) before the error goes on.
 * @template {{ start(): Promise<void>, stop(): Promise<void> }} S
 * @param {S} server
 * @returns {Promise<S>}
 */
export async function started(server) {
  try {
    await server.start();
  } catch (err) {
    await server.stop().catch(() => {});
    throw err;
  }
  return server;
}

/** One run of a server process; `start()` again after it exited to run it anew. */
export class GroupProcess {
  #name;
  #child = null;
  #exited = null;
  #logTail = [];
  #onParentExit = () => this.signal('SIGKILL');

  /** @param {string} name what `ps` shows for the wrapper (`starstream-kafka`, …) */
  constructor(name) {
    this.#name = name;
  }

  get running() {
    return this.#child !== null;
  }

  /** Resolves when the current run has exited (at once when none runs). */
  get exited() {
    return this.#exited ?? Promise.resolve();
  }

  /** The last lines the process wrote, stdout and stderr together. */
  logTail() {
    return this.#logTail.join('\n');
  }

  /** Keeps `chunk`'s lines in the log tail (also for helper processes run beside the server). */
  remember(chunk) {
    for (const line of chunk.toString().split('\n')) {
      if (!line.trim()) continue;
      this.#logTail.push(line);
      if (this.#logTail.length > LOG_LINES_KEPT) this.#logTail.shift();
    }
  }

  /** @param {string} command @param {string[]} args @param {{ cwd?: string, env?: NodeJS.ProcessEnv }} [options] */
  start(command, args, options = {}) {
    if (this.#child) throw new Error(`${this.#name} is already running`);
    const child = spawn('sh', ['-c', WRAPPER, this.#name, command, ...args], {
      ...options,
      detached: true,
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    child.stdout.on('data', (c) => this.remember(c));
    child.stderr.on('data', (c) => this.remember(c));
    child.stdin.on('error', () => {});
    this.#exited = new Promise((resolve) => child.on('exit', resolve));
    this.#child = child;
    void this.#exited.then(() => {
      if (this.#child === child) this.#child = null;
      child.stdin.destroy();
      process.removeListener('exit', this.#onParentExit);
    });
    process.on('exit', this.#onParentExit);
  }

  /** Sends `sig` to the whole process group; nothing when none runs. */
  signal(sig) {
    const pid = this.#child?.pid;
    if (!pid) return;
    try {
      process.kill(-pid, sig);
    } catch {
      // already gone
    }
  }

  /**
   * Asks the server to stop (`how`: 'stdin' closes the wrapper's stdin, which sends SIGTERM to the server only;
   * 'SIGTERM' signals the whole group), and SIGKILLs the group after `graceMs`. Resolves once it exited.
   * @param {{ how: 'stdin' | 'SIGTERM', graceMs: number }} options
   */
  async stop({ how, graceMs }) {
    const child = this.#child;
    if (!child) return;
    if (how === 'stdin') child.stdin.end();
    else this.signal('SIGTERM');
    const timer = setTimeout(() => this.signal('SIGKILL'), graceMs);
    await this.#exited;
    clearTimeout(timer);
  }

  /** SIGKILL to the group: what a crash looks like to clients. */
  async kill() {
    if (!this.#child) return;
    this.signal('SIGKILL');
    await this.#exited;
  }
}
