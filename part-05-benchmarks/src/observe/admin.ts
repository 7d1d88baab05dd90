// The admin listener: the status page, /status.json and /metrics, on an address of its own.
// The public listener never serves these paths (nginx puts stub_status in a location you
// protect; HAProxy's stats page is usually a listener of its own, as here).
import http from 'node:http';
import { once } from 'node:events';
import { readFileSync } from 'node:fs';
import { prometheusText } from './prometheus.ts';
import type { ProxyStatus } from './status.ts';
import type { Address } from '../address.ts';

const PAGE = readFileSync(new URL('./status-page.html', import.meta.url));

/** Buttons for the demo's backends: stop, start, slow, fail (500s), normal. */
export interface Lab {
  /** Does it; returns an error message for an unknown backend or action. */
  act(backend: string, action: string): string | undefined;
}

export interface Admin {
  readonly address: Address;
  close(): Promise<void>;
}

export async function startAdmin(address: Address, status: () => Promise<ProxyStatus>, lab?: Lab): Promise<Admin> {
  const server = http.createServer((req, res) => {
    const send = (code: number, type: string, body: string | Buffer) => {
      res.writeHead(code, { 'content-type': type, 'cache-control': 'no-store' });
      res.end(req.method === 'HEAD' ? undefined : body);
    };
    const path = (req.url ?? '/').split('?')[0]!;
    const labAction = /^\/lab\/([^/]+)\/([a-z]+)$/.exec(path);
    if (labAction && lab) {
      if (req.method !== 'POST') return send(405, 'text/plain', 'use POST\n');
      const error = lab.act(decodeURIComponent(labAction[1]!), labAction[2]!);
      return error ? send(404, 'text/plain', `${error}\n`) : send(200, 'text/plain', 'ok\n');
    }
    if (req.method !== 'GET' && req.method !== 'HEAD') return send(405, 'text/plain', 'use GET\n');
    if (path === '/') return send(200, 'text/html; charset=utf-8', PAGE);
    if (path !== '/status.json' && path !== '/metrics') return send(404, 'text/plain', 'not found: try /, /status.json or /metrics\n');
    status().then(
      (s) => (path === '/metrics' ? send(200, 'text/plain; version=0.0.4; charset=utf-8', prometheusText(s)) : send(200, 'application/json', JSON.stringify(s))),
      (err: Error) => send(503, 'text/plain', `status unavailable: ${err.message}\n`),
    );
  });
  server.listen(address.port, address.host);
  await once(server, 'listening');
  const bound = server.address() as { address: string; port: number };
  return {
    address: { host: bound.address, port: bound.port },
    close: async () => {
      server.closeAllConnections();
      server.close();
      await once(server, 'close');
    },
  };
}
