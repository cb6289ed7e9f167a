import { randomBytes } from 'node:crypto';
import type { DemoSummary, LiveApi, ServeMode } from './demo.ts';

/**
 * `--serve` on `demo` and `replay`: after the stream, the pipeline and its API stay up (the summary first,
 * then where the API answers and three commands to try) until Ctrl-C (SIGINT) or SIGTERM.
 *
 * The admin routes and `POST /v1/events` need `ops.apiToken`; a served run without one gets a random token
 * for this run only, printed with the commands, so the try-it path can write events without configuring
 * anything. `STARSTREAM_OPS__API_TOKEN` chooses it instead (then it is not printed).
 */

/** A token for one served run: 128 random bits, hex. */
export function generatedToken(): string {
  return randomBytes(16).toString('hex');
}

/** Resolves with the first SIGINT or SIGTERM (the listeners are removed then, so a second one ends the process). */
export function untilSignal(): Promise<NodeJS.Signals> {
  return new Promise((resolve) => {
    const on = (signal: NodeJS.Signals): void => {
      process.off('SIGINT', on);
      process.off('SIGTERM', on);
      process.stderr.write(`${signal}: stopping\n`);
      resolve(signal);
    };
    process.on('SIGINT', on);
    process.on('SIGTERM', on);
  });
}

/** What a served run prints once its stream is processed, after the summary. */
export function servingText(api: LiveApi, options: { tokenGenerated: boolean; user?: string }): string {
  const url = api.url;
  const port = new URL(url).port;
  const user = options.user ?? 'me';
  const auth = api.token ? `-H 'authorization: Bearer ${api.token}' ` : '';
  const item = api.lastEvent?.itemId ?? 'ITEM';
  // One minute after the stream's last event: the example extends the stream's own time, so the evidence
  // the API shows for it reads against the same clock (any time up to now works as well).
  const atMs = api.lastEvent ? api.lastEvent.timestampMs + 60_000 : Date.now();
  const event = JSON.stringify({ eventId: `${user}-1`, userId: user, itemId: item, type: 'click', timestampMs: atMs });
  const lines = [
    '',
    `serving on ${url} (port ${port}): the /v1/ API, /metrics, /healthz, /readyz; Ctrl-C stops`,
    api.token
      ? options.tokenGenerated
        ? `  token: ${api.token} (made for this run; set STARSTREAM_OPS__API_TOKEN to choose one)`
        : '  token: the one in ops.apiToken (STARSTREAM_OPS__API_TOKEN)'
      : '  no ops.apiToken: reads are open, POST /v1/events and the admin routes answer 403',
    'try:',
    `  curl ${auth}'${url}/v1/users/${user}/recommendations?k=5'          # "coldStart": true, popular items`,
    `  curl ${auth}-X POST ${url}/v1/events -d '${event}'`,
    `  curl ${auth}'${url}/v1/users/${user}/recommendations?k=5'          # now "coldStart": false, from what ${user} did`,
    'API reference: docs/openapi.yaml',
  ];
  return `${lines.join('\n')}\n`;
}

/** The serve mode of a run: prints the summary, then where the API answers, and waits for a signal. */
export function serveMode(printSummary: (summary: DemoSummary) => void, tokenGenerated: boolean): ServeMode {
  return {
    onServing: (summary, api) => {
      printSummary(summary);
      process.stdout.write(servingText(api, { tokenGenerated }));
    },
    until: untilSignal,
  };
}
