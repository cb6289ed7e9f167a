import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Registry } from 'prom-client';

/**
 * The operations HTTP server: `/metrics` (Prometheus text), `/healthz` (the process answers) and `/readyz`
 * (consuming, store reachable, model loaded — whatever `readiness` checks; false while draining).
 * Further routes (the on-demand API) are added with `route`.
 */

export type Readiness = () => Promise<{ ready: boolean; checks: Record<string, boolean> }>;
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
  const server: Server = createServer((req, res) => {
    void handle(req, res).catch((err: unknown) => {
      if (!res.headersSent) res.writeHead(500, { 'content-type': 'text/plain' });
      res.end(`internal error: ${err instanceof Error ? err.message : String(err)}\n`);
    });
  });

  async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const url = new URL(req.url ?? '/', 'http://localhost');
    if (url.pathname === '/metrics') {
      res.writeHead(200, { 'content-type': options.registry.contentType });
      res.end(await options.registry.metrics());
    } else if (url.pathname === '/healthz') {
      json(res, 200, { status: 'ok' });
    } else if (url.pathname === '/readyz') {
      const r = await options.readiness();
      json(res, r.ready ? 200 : 503, { status: r.ready ? 'ready' : 'not ready', checks: r.checks });
    } else {
      const route = routes.find(([prefix]) => url.pathname.startsWith(prefix));
      if (route) await route[1](req, res, url);
      else json(res, 404, { error: 'not found' });
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

export function json(res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}): void {
  res.writeHead(status, { ...headers, 'content-type': 'application/json' });
  res.end(`${JSON.stringify(body)}\n`);
}
