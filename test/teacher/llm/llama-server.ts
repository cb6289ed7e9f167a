import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { createServer } from 'node:net';
import { join, resolve } from 'node:path';
import { eventually } from '../../helpers.ts';

/**
 * A real OpenAI-compatible server for the HTTP backend's suites: llama-cpp-python's (`python -m
 * llama_cpp.server`) on the teacher GGUF, on a free loopback port. It comes from `npm run teacher:server`
 * (scripts/llm-server/install.sh, which .ci/run calls); `serverSkipReason` says why a suite cannot have it.
 */
const VENV = process.env.STAR_LLM_SERVER_VENV ?? resolve('.cache/llm-server/venv');
const PYTHON = join(VENV, 'bin', 'python');

export function serverSkipReason(): string | false {
  return existsSync(PYTHON) ? false : `no llama-cpp-python server at ${VENV} (npm run teacher:server installs it)`;
}

export interface LlamaServer {
  /** `http://127.0.0.1:<port>/v1` */
  readonly baseUrl: string;
  readonly alias: string;
  readonly startedInMs: number;
  /** The server's last output lines, for failure messages. */
  output(): string;
  stop(): Promise<void>;
}

export async function startLlamaServer(modelPath: string, options: { readonly contextSize?: number } = {}): Promise<LlamaServer> {
  const port = await freePort();
  const baseUrl = `http://127.0.0.1:${port}/v1`;
  const alias = 'gemma-3-270m';
  const started = Date.now();
  // --n_threads 1: the test runner runs two files at once on a 2-core machine; llama.cpp's spinning threads
  // slow down sharply when they outnumber the free cores.
  const args = ['-m', 'llama_cpp.server', '--model', modelPath, '--model_alias', alias, '--host', '127.0.0.1'];
  args.push('--port', String(port), '--n_ctx', String(options.contextSize ?? 1024), '--n_threads', '1', '--verbose', 'false');
  const child = spawn(PYTHON, args, { stdio: ['ignore', 'pipe', 'pipe'] });
  const serverLog: string[] = [];
  const keep = (chunk: Buffer): void => {
    serverLog.push(...chunk.toString('utf8').split('\n').filter(Boolean));
    serverLog.splice(0, Math.max(0, serverLog.length - 40));
  };
  child.stdout?.on('data', keep);
  child.stderr?.on('data', keep);
  const stop = async (): Promise<void> => {
    if (child.exitCode !== null || child.signalCode !== null) return;
    const exited = new Promise((r) => child.once('exit', r));
    child.kill('SIGTERM');
    const timer = setTimeout(() => child.kill('SIGKILL'), 5_000);
    await exited;
    clearTimeout(timer);
  };
  try {
    await eventually(
      async () => {
        if (child.exitCode !== null) throw new Error(`server exited ${child.exitCode}:\n${serverLog.join('\n')}`);
        const res = await fetch(`${baseUrl}/models`).catch(() => null);
        return res?.ok;
      },
      // A guard against a server that never comes up; a loaded machine takes far longer than an idle one.
      300_000,
      200,
    );
  } catch (err) {
    await stop();
    throw new Error(`llama-cpp-python server did not come up: ${String(err)}\n${serverLog.join('\n')}`);
  }
  return { baseUrl, alias, startedInMs: Date.now() - started, output: () => serverLog.join('\n'), stop };
}

function freePort(): Promise<number> {
  return new Promise((resolvePort, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      server.close(() => (typeof address === 'object' && address ? resolvePort(address.port) : reject(new Error('no port'))));
    });
  });
}
