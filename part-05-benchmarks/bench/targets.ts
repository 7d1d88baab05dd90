// What the harness measures: every part, and the baselines, each in its own process.
import net from 'node:net';
import { chmodSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { setTimeout as sleep } from 'node:timers/promises';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { proxyArgv, startProxy, which, type Started } from './processes.ts';

export interface Target {
  name: string;
  /** Parts 1-2 and "direct" talk to one backend; the rest balance over the pool. */
  pool: boolean;
  launch(backends: string[]): Promise<Started>;
}

const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const TSX = ['--import', 'tsx'];

function part(n: number, folder: string, extra: string[] = []): Target {
  return proxyIn(`part ${n}`, join(ROOT, folder), n >= 3, extra);
}

/** A proxy with the book's command line, in any folder (a part, or a copy of one). */
export function proxyIn(name: string, folder: string, pool = true, extra: string[] = [], env?: NodeJS.ProcessEnv): Target {
  return {
    name,
    pool,
    launch: (backends) =>
      startProxy(
        process.execPath,
        [...TSX, join(folder, 'src/main.ts'), '--listen', '127.0.0.1:0', ...(pool ? backends : backends.slice(0, 1)).flatMap((b) => ['--backend', b]), ...extra],
        env,
      ),
  };
}

export const PARTS: Target[] = [
  part(1, 'part-01-one-shot'),
  part(2, 'part-02-event-loop'),
  part(3, 'part-03-multi-backend'),
  part(4, 'part-04-keepalive'),
  part(5, 'part-05-benchmarks'),
];

export const DIRECT: Target = {
  name: 'direct',
  pool: false,
  // No proxy: the generator talks to the first backend. "Starting" it is a no-op.
  launch: async (backends) => ({ port: Number(backends[0]!.split(':')[1]), stop: async () => {} }),
};

export const HTTP_PROXY: Target = {
  name: 'http-proxy',
  pool: true,
  launch: (backends) => startProxy(process.execPath, [...TSX, join(ROOT, 'part-05-benchmarks/bench/http-proxy-baseline.ts'), ...backends]),
};

/** The HTTP floor: a minimal keep-alive HTTP proxy, to HTTP what part 2's pump is to TCP (not a product). */
export const HTTP_FLOOR: Target = {
  name: 'http floor',
  pool: true,
  launch: (backends) => startProxy(process.execPath, [...TSX, join(ROOT, 'part-05-benchmarks/bench/http-floor.ts'), ...backends]),
};

export const UNDICI_PROXY: Target = {
  name: 'undici',
  pool: true,
  launch: (backends) => startProxy(process.execPath, [...TSX, join(ROOT, 'part-05-benchmarks/bench/undici-proxy-baseline.ts'), ...backends]),
};

/**
 * nginx's config for the harness: one worker, its pid, log and temp paths in `dir`, a keep-alive
 * upstream, and `ssl` lines for a TLS listener (bench/tls-targets.ts) when given.
 */
function nginxConf(dir: string, port: number, backends: string[], ssl?: string): string {
  return `worker_processes 1;
daemon off;
pid ${dir}/nginx.pid;
error_log ${dir}/error.log warn;
events { worker_connections 4096; }
http {
  access_log off;
  client_body_temp_path ${dir}/body; proxy_temp_path ${dir}/proxy; fastcgi_temp_path ${dir}/fastcgi;
  uwsgi_temp_path ${dir}/uwsgi; scgi_temp_path ${dir}/scgi;
  upstream pool { ${backends.map((b) => `server ${b};`).join(' ')} keepalive 32; }
  server {
    listen 127.0.0.1:${port}${ssl === undefined ? '' : ' ssl'};
${ssl ?? ''}    location / { proxy_pass http://pool; proxy_http_version 1.1; proxy_set_header Connection ""; }
  }
}
`;
}

/** nginx with a config of our own in a temp dir, when the binary is installed. */
export function nginxTarget(): Target | undefined {
  const binary = which('nginx');
  if (!binary) return undefined;
  return {
    name: 'nginx',
    pool: true,
    launch: (backends) => launchNginx(binary, backends),
  };
}

/** Starts nginx in the foreground with our config (plus `ssl` lines for a TLS listener) in a temp dir of its own. */
export async function launchNginx(binary: string, backends: string[], ssl?: string): Promise<Started> {
  const dir = mkdtempSync(join(tmpdir(), ssl ? 'bench-nginx-tls-' : 'bench-nginx-'));
  chmodSync(dir, 0o777); // the worker may run as "nobody"
  const port = await freePort();
  writeFileSync(join(dir, 'nginx.conf'), nginxConf(dir, port, backends, ssl));
  // Foreground, with its own pid, log and temp paths: nothing of the system's nginx is touched.
  return foreground(binary, ['-p', dir, '-c', join(dir, 'nginx.conf')], dir, port);
}

/** HAProxy with a config of our own in a temp dir, one thread, when the binary is installed. */
export function haproxyTarget(): Target | undefined {
  const binary = which('haproxy');
  if (!binary) return undefined;
  return {
    name: 'haproxy',
    pool: true,
    async launch(backends) {
      const dir = mkdtempSync(join(tmpdir(), 'bench-haproxy-'));
      const port = await freePort();
      // Keep-alive both ways and idle server connections reused by any request: like nginx's
      // `keepalive` and this book's pool. A failed connect is retried on another server and the
      // failing one marked down at once, as nginx's max_fails=1 does. No maxconn: HAProxy derives
      // it from the open-file limit, two descriptors per client (499 at ulimit -n 1024), as part 2's
      // budget does; a maxconn the limit cannot hold stops HAProxy from starting.
      writeFileSync(
        join(dir, 'haproxy.cfg'),
        `global
  nbthread 1
defaults
  mode http
  option http-keep-alive
  http-reuse always
  option redispatch
  retries 2
  retry-on conn-failure empty-response
  timeout connect 5s
  timeout client 60s
  timeout server 60s
frontend bench
  bind 127.0.0.1:${port}
  default_backend pool
backend pool
  balance roundrobin
${backends.map((b, i) => `  server b${i} ${b} check inter 2s observe layer4 error-limit 1 on-error mark-down`).join('\n')}
`,
      );
      // -db: stay in the foreground, so the harness owns the process and can read its CPU time.
      return foreground(binary, ['-db', '-f', join(dir, 'haproxy.cfg')], dir, port);
    },
  };
}

/** Runs a system proxy in the foreground until it accepts on `port`; stopping removes its temp dir. */
export async function foreground(binary: string, args: string[], dir: string, port: number): Promise<Started> {
  const child = spawn(...proxyArgv(binary, args), { stdio: 'ignore' });
  await waitForPort(port);
  return {
    child,
    port,
    async stop() {
      if (child.exitCode === null && child.signalCode === null) {
        child.kill('SIGTERM');
        await once(child, 'exit');
      }
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** Resolves once something accepts connections on the port (nginx prints no ready line). */
export async function waitForPort(port: number, timeoutMs = 5000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const ok = await new Promise<boolean>((resolve) => {
      const socket = net.connect(port, '127.0.0.1', () => {
        socket.destroy();
        resolve(true);
      });
      socket.on('error', () => resolve(false));
    });
    if (ok) return;
    if (Date.now() > deadline) throw new Error(`nothing listening on ${port} after ${timeoutMs} ms`);
    await sleep(50);
  }
}

export async function freePort(): Promise<number> {
  const server = net.createServer().listen(0, '127.0.0.1');
  await new Promise((resolve) => server.once('listening', resolve));
  const { port } = server.address() as net.AddressInfo;
  await new Promise((resolve) => server.close(resolve));
  return port;
}
