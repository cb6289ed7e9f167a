import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import type { Registry } from 'prom-client';

/**
 * The operations HTTP server: `/metrics` (Prometheus text), `/healthz` (the process answers) and `/readyz`
 * (consuming, store reachable, model loaded — whatever `readiness` checks; false while draining). A 503 from
 * `/readyz` carries `reasons`, one line per failing check, so a probe's log says why.
 * These three answer GET and HEAD (HEAD as GET without the body); any other method is a 405 with `Allow`.
 * Further routes (the on-demand API) are added with `route`.
 */

export type Readiness = () => Promise<{ ready: boolean; checks: Record<string, boolean>; reasons?: readonly string[] }>;
export type RouteHandler = (req: IncomingMessage, res: ServerResponse, url: URL) => Promise<void>;

export interface OpsServer {
  readonly url: string;
  route(prefix: string, handler: RouteHandler): void;
  close(): Promise<void>;
}

export async function startOpsServer(options: {
  host: string;
  port: number;
  registry: Registry;
  readiness: Readiness;
}): Promise<OpsServer> {
  const routes: [string, RouteHandler][] = [];
  // Sockets with a response under way: a parse error on them must not write a second response into it.
  const answering = new WeakSet<Socket>();
  // The Host header is checked in `handle` (a JSON 400 rather than Node's bare one); it is never used.
  const server: Server = createServer({ requireHostHeader: false }, (req, res) => {
    answering.add(req.socket);
    res.once('close', () => answering.delete(req.socket));
    void handle(req, res).catch((err: unknown) => {
      if (res.headersSent) res.end();
      else json(res, 500, { error: { code: 'INTERNAL', message: err instanceof Error ? err.message : String(err) } });
    });
  });
  // Requests Node's parser refuses (bad request line, method, header bytes, headers over the size limit) and
  // CONNECT get a JSON error like every other answer, instead of a bare status line or a dropped connection.
  server.on('clientError', (err: NodeJS.ErrnoException, socket: Socket) => {
    if (socket.writable && !answering.has(socket) && err.code !== 'ECONNRESET') {
      const [status, code] = err.code === 'HPE_HEADER_OVERFLOW' ? [431, 'HEADERS_TOO_LARGE'] : err.code === 'ERR_HTTP_REQUEST_TIMEOUT' ? [408, 'REQUEST_TIMEOUT'] : [400, 'BAD_REQUEST'];
      socket.end(rawJson(status, { error: { code, message: `the request could not be parsed (${err.code ?? 'error'})` } }));
    }
    socket.destroy();
  });
  server.on('connect', (_req: IncomingMessage, socket: Socket) => {
    socket.end(rawJson(405, { error: { code: 'METHOD_NOT_ALLOWED', message: 'CONNECT is not served' } }));
  });

  async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    if (req.httpVersion === '1.1' && req.headers.host === undefined) {
      return json(res, 400, { error: { code: 'BAD_REQUEST', message: 'an HTTP/1.1 request needs a Host header' } });
    }
    let url: URL;
    try {
      url = new URL(req.url ?? '/', 'http://localhost');
    } catch {
      // An absolute-form target (`GET http://host:99999/…`) that is not a valid URL.
      return json(res, 400, { error: { code: 'BAD_REQUEST', message: 'the request target is not a valid URL' } });
    }
    if (OPS_PATHS.has(url.pathname) && req.method !== 'GET' && req.method !== 'HEAD') {
      return json(res, 405, { error: { code: 'METHOD_NOT_ALLOWED', message: `${req.method ?? ''} is not allowed on ${url.pathname}; use GET or HEAD` } }, { allow: 'GET, HEAD' });
    }
    if (url.pathname === '/metrics') {
      res.writeHead(200, { 'content-type': options.registry.contentType });
      res.end(await options.registry.metrics());
    } else if (url.pathname === '/healthz') {
      json(res, 200, { status: 'ok' });
    } else if (url.pathname === '/readyz') {
      const r = await options.readiness();
      const body = { status: r.ready ? 'ready' : 'not ready', checks: r.checks };
      json(res, r.ready ? 200 : 503, r.ready ? body : { ...body, reasons: r.reasons ?? [] });
    } else {
      const route = routes.find(([prefix]) => url.pathname.startsWith(prefix));
      if (route) await route[1](req, res, url);
      else json(res, 404, { error: { code: 'NOT_FOUND', message: `no route ${url.pathname.slice(0, 200)}` } });
    }
  }

  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port, options.host, () => resolve());
  });
  const address = server.address() as AddressInfo;
  return {
    url: `http://${address.family === 'IPv6' ? `[${address.address}]` : address.address}:${address.port}`,
    route: (prefix, handler) => void routes.push([prefix, handler]),
    close: () => new Promise((resolve) => {
      server.closeAllConnections();
      server.close(() => resolve());
    }),
  };
}

const OPS_PATHS: ReadonlySet<string> = new Set(['/metrics', '/healthz', '/readyz']);

export function json(res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}): void {
  res.writeHead(status, { ...headers, 'content-type': 'application/json' });
  res.end(`${JSON.stringify(body)}\n`);
}

/** A whole JSON response written straight to a socket (no `ServerResponse` exists for a refused request). */
function rawJson(status: number, body: unknown): string {
  const text = `${JSON.stringify(body)}\n`;
  const reason = { 400: 'Bad Request', 405: 'Method Not Allowed', 408: 'Request Timeout', 431: 'Request Header Fields Too Large' }[status] ?? 'Error';
  return `HTTP/1.1 ${status} ${reason}\r\ncontent-type: application/json\r\ncontent-length: ${Buffer.byteLength(text)}\r\nconnection: close\r\n\r\n${text}`;
}
