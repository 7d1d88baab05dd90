// Real backends, real clients and a real proxy process, all on 127.0.0.1 with port 0.
import net from 'node:net';
import http from 'node:http';
import { once } from 'node:events';
import { spawn, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';

export const MAIN = fileURLToPath(new URL('../src/main.ts', import.meta.url));

/** Starts a server on 127.0.0.1 (port 0 picks a free one) and returns it with its port. */
export async function listen<T extends net.Server>(server: T, port = 0): Promise<{ server: T; port: number }> {
  server.listen(port, '127.0.0.1');
  await once(server, 'listening');
  return { server, port: (server.address() as net.AddressInfo).port };
}

/** Closes a server and every connection it still has. */
export async function shut(server: net.Server): Promise<void> {
  if (server instanceof http.Server) server.closeAllConnections();
  await new Promise<void>((resolve) => server.close(() => resolve()));
}

/** A port with nothing listening on it: connecting there is refused. */
export async function freePort(): Promise<number> {
  const { server, port } = await listen(net.createServer());
  await shut(server);
  return port;
}

/** Reads a socket until the peer ends it (FIN) or it is cut, and returns every byte. */
export async function readAll(socket: net.Socket): Promise<Buffer> {
  const chunks: Buffer[] = [];
  socket.on('data', (chunk: Buffer) => chunks.push(chunk));
  socket.on('error', () => {});
  await new Promise((resolve) => {
    socket.once('end', resolve);
    socket.once('close', resolve);
  });
  return Buffer.concat(chunks);
}

export async function connect(port: number): Promise<net.Socket> {
  const socket = net.connect({ host: '127.0.0.1', port, allowHalfOpen: true });
  await once(socket, 'connect');
  return socket;
}

/** A plain HTTP/1.1 request through node:http with a fresh connection; resolves with the whole body. */
export function request(
  port: number,
  options: { method?: string; path?: string; body?: Buffer } = {},
): Promise<{ status: number; body: Buffer }> {
  return new Promise((resolve, reject) => {
    const req = http.request(
      { host: '127.0.0.1', port, method: options.method ?? 'GET', path: options.path ?? '/', agent: false },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (chunk: Buffer) => chunks.push(chunk));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks) }));
        res.on('error', reject);
      },
    );
    req.on('error', reject);
    req.end(options.body);
  });
}

export interface RunningProcess {
  child: ChildProcess;
  stdout: () => string;
  stderr: () => string;
  exit: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

/** Runs src/main.ts with tsx in its own process, as a user would; optionally under `ulimit -n`. */
export function run(args: string[], openFileLimit?: number): RunningProcess {
  const command = [process.execPath, '--import', 'tsx', MAIN, ...args];
  const child = openFileLimit
    ? spawn('/bin/sh', ['-c', 'ulimit -n "$0" && exec "$@"', String(openFileLimit), ...command], { stdio: ['ignore', 'pipe', 'pipe'] })
    : spawn(command[0]!, command.slice(1), { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  let err = '';
  child.stdout!.on('data', (chunk: Buffer) => (out += chunk));
  child.stderr!.on('data', (chunk: Buffer) => (err += chunk));
  const exit = once(child, 'close').then(([code, signal]) => ({
    code: code as number | null,
    signal: signal as NodeJS.Signals | null,
  }));
  return { child, stdout: () => out, stderr: () => err, exit };
}

/** Waits until the process has printed text matching pattern on stdout or stderr. */
export async function waitForOutput(proc: RunningProcess, pattern: RegExp): Promise<RegExpExecArray> {
  for (;;) {
    const match = pattern.exec(proc.stdout()) ?? pattern.exec(proc.stderr());
    if (match) return match;
    const ended = await Promise.race([
      once(proc.child.stdout!, 'data').then(() => false),
      once(proc.child.stderr!, 'data').then(() => false),
      proc.exit.then(() => true),
    ]);
    if (ended) throw new Error(`process exited before printing ${pattern}: ${proc.stderr()}`);
  }
}

/** Waits for the "listening on HOST:PORT" line and returns the port. */
export async function listeningPort(proc: RunningProcess): Promise<number> {
  const match = await waitForOutput(proc, /^listening on 127\.0\.0\.1:(\d+)$/m);
  return Number(match[1]);
}
