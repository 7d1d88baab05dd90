// The TLS benchmark's servers: this load balancer, nginx and HAProxy, each terminating TLS with the same
// certificate and key in front of the same backend, one process (one worker, one thread) each.
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { start, which, type Started } from './processes.ts';
import { foreground, freePort, launchNginx } from './targets.ts';
import type { Issued } from '../src/tls/openssl.ts';

export interface TlsTarget {
  name: string;
  launch(backend: string, pair: Issued): Promise<Started>;
}

const MAIN = fileURLToPath(new URL('../src/main.ts', import.meta.url));

export const PART5_TLS: TlsTarget = {
  name: 'part 5',
  launch: (backend, pair) =>
    start(process.execPath, ['--import', 'tsx', MAIN, '--listen', '127.0.0.1:0', '--backend', backend, '--tls-cert', pair.cert, '--tls-key', pair.key]),
};

/** nginx: tickets and a shared session cache, as most sites configure it (ssl_session_cache shared). */
export function nginxTls(): TlsTarget | undefined {
  const binary = which('nginx');
  if (!binary) return undefined;
  return {
    name: 'nginx',
    launch: (backend, pair) =>
      launchNginx(
        binary,
        [backend],
        `    ssl_certificate ${pair.cert};
    ssl_certificate_key ${pair.key};
    ssl_protocols TLSv1.2 TLSv1.3;
    ssl_session_cache shared:SSL:10m;
    ssl_session_timeout 5m;
    ssl_session_tickets on;
`,
      ),
  };
}

/** HAProxy: `bind ... ssl crt` with the certificate and key in one PEM file, as it wants them. */
export function haproxyTls(): TlsTarget | undefined {
  const binary = which('haproxy');
  if (!binary) return undefined;
  return {
    name: 'haproxy',
    async launch(backend, pair) {
      const dir = mkdtempSync(join(tmpdir(), 'bench-haproxy-tls-'));
      const port = await freePort();
      const combined = join(dir, 'site.pem');
      writeFileSync(combined, Buffer.concat([readFileSync(pair.cert), readFileSync(pair.key)]));
      writeFileSync(
        join(dir, 'haproxy.cfg'),
        `global
  nbthread 1
  maxconn 4096
defaults
  mode http
  option http-keep-alive
  http-reuse always
  timeout connect 5s
  timeout client 60s
  timeout server 60s
frontend bench
  bind 127.0.0.1:${port} ssl crt ${combined} alpn http/1.1 ssl-min-ver TLSv1.2
  default_backend pool
backend pool
  server b0 ${backend}
`,
      );
      return foreground(binary, ['-db', '-f', join(dir, 'haproxy.cfg')], dir, port);
    },
  };
}
