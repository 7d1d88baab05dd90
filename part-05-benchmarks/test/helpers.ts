// Real backends, real clients and a real proxy process, all on 127.0.0.1 with port 0.
import net from 'node:net';
import http from 'node:http';
import { once } from 'node:events';
import { spawn, type ChildProcess, type SpawnOptions } from 'node:child_process';
import { fileURLToPath } from 'node:url';

export const MAIN = fileURLToPath(new URL('../src/main.ts', import.meta.url));

const connections = new WeakMap<net.Server, Set<net.Socket>>();

/** Starts a server on 127.0.0.1 (port 0 picks a free one) and returns it with its port. */
export async function listen<T extends net.Server>(server: T, port = 0): Promise<{ server: T; port: number }> {
  const open = new Set<net.Socket>();
  connections.set(server, open);
  server.on('connection', (socket: net.Socket) => {
    open.add(socket);
    socket.once('close', () => open.delete(socket));
  });
  server.listen(port, '127.0.0.1');
  await once(server, 'listening');
  return { server, port: (server.address() as net.AddressInfo).port };
}

/** Closes a server and every connection it still has (upgraded ones included). */
export async function shut(server: net.Server): Promise<void> {
  for (const socket of connections.get(server) ?? []) socket.destroy();
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

export interface Reply {
  status: number;
  headers: http.IncomingHttpHeaders;
  body: Buffer;
}

/**
 * An HTTP/1.1 request through node:http; resolves with the whole response. Without an agent it
 * opens a fresh connection; pass a keep-alive agent to send several requests on one connection.
 */
export function request(
  port: number,
  options: { method?: string; path?: string; body?: Buffer | string; headers?: http.OutgoingHttpHeaders; agent?: http.Agent } = {},
): Promise<Reply> {
  return new Promise((resolve, reject) => {
    const req = http.request(
      {
        host: '127.0.0.1',
        port,
        method: options.method ?? 'GET',
        path: options.path ?? '/',
        headers: options.headers,
        agent: options.agent ?? false,
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (chunk: Buffer) => chunks.push(chunk));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks) }));
        res.on('error', reject);
      },
    );
    req.on('error', reject);
    req.end(options.body);
  });
}

/** A keep-alive agent that uses a single connection, so requests share it in order. */
export function oneConnection(): http.Agent {
  return new http.Agent({ keepAlive: true, maxSockets: 1 });
}

/** Sends raw bytes on a fresh connection and returns everything that comes back until the proxy closes. */
export async function raw(port: number, bytes: string | Buffer): Promise<string> {
  const socket = await connect(port);
  socket.write(bytes);
  const reply = await readAll(socket);
  socket.destroy();
  return reply.toString('latin1');
}

export interface RunningProcess {
  child: ChildProcess;
  stdout: () => string;
  stderr: () => string;
  exit: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

/** Runs a TypeScript file with tsx in its own process (a demo, the harness), its output collected. */
export function runScript(script: string, args: string[], env: Record<string, string> = {}): RunningProcess {
  return collected(spawn(process.execPath, ['--import', 'tsx', script, ...args], { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, ...env } }));
}

/** Runs src/main.ts with tsx in its own process, as a user would; optionally under `ulimit -n`, or with more environment. */
export function run(args: string[], openFileLimit?: number, env: Record<string, string> = {}): RunningProcess {
  const command = [process.execPath, '--import', 'tsx', MAIN, ...args];
  const options: SpawnOptions = { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, ...env } };
  const child = openFileLimit
    ? spawn('/bin/sh', ['-c', 'ulimit -n "$0" && exec "$@"', String(openFileLimit), ...command], options)
    : spawn(command[0]!, command.slice(1), options);
  return collected(child);
}

/** What a child process prints, kept as it comes, and how it ended. */
function collected(child: ChildProcess): RunningProcess {
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

/** A small seeded generator (mulberry32), so the random strategies are repeatable in tests. */
export function seededRandom(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** Collects log lines and lets a test wait for one to appear. */
export class LogWatcher {
  readonly lines: string[] = [];
  private waiters: Array<{ pattern: RegExp; resolve: () => void }> = [];

  readonly log = (line: string): void => {
    this.lines.push(line);
    this.waiters = this.waiters.filter((w) => !(w.pattern.test(line) && (w.resolve(), true)));
  };

  /** Resolves when a line matching pattern has been logged (now or later). */
  waitFor(pattern: RegExp): Promise<void> {
    if (this.lines.some((line) => pattern.test(line))) return Promise.resolve();
    return new Promise((resolve) => this.waiters.push({ pattern, resolve }));
  }

  count(pattern: RegExp): number {
    return this.lines.filter((line) => pattern.test(line)).length;
  }
}

/** An HTTP backend that answers with its name (and the request's method and path). */
export function namedBackend(name: string, handler?: http.RequestListener): http.Server {
  return http.createServer(
    handler ??
      ((req, res) => {
        req.resume();
        req.on('end', () => res.end(`${name} ${req.method} ${req.url}`));
      }),
  );
}

/** Counts the TCP connections a server accepts. */
export function countConnections(server: net.Server): () => number {
  let n = 0;
  server.on('connection', () => n++);
  return () => n;
}

/**
 * A backend whose accept queue is full: connects to it hang, as they do to an overloaded
 * or firewalled host. A stopped child process listens with backlog 1, and two connections
 * fill its queue; Linux then drops further SYNs.
 */
export async function stalledBackend(): Promise<{ port: number; release: () => Promise<void> }> {
  const script = `const s = require('net').createServer();
    s.listen({ port: 0, host: '127.0.0.1', backlog: 1 }, () => console.log(s.address().port));`;
  const child = spawn(process.execPath, ['-e', script], { stdio: ['ignore', 'pipe', 'inherit'] });
  const [line] = (await once(child.stdout!, 'data')) as [Buffer];
  const port = Number(line.toString());
  child.kill('SIGSTOP');
  const fillers = [await connect(port), await connect(port)];
  return {
    port,
    release: async () => {
      for (const socket of fillers) socket.destroy();
      child.kill('SIGKILL');
      await once(child, 'exit');
    },
  };
}
