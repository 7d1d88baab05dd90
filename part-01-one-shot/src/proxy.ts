// A one-shot forwarder. One client at a time, in straight-line async/await.
import net from 'node:net';
import { once } from 'node:events';
import { AcceptQueue } from './accept-queue.ts';
import { SocketTracker } from './sockets.ts';
import { formatAddress, type Address } from './address.ts';
import type { ProxyConfig } from './cli.ts';

export interface ProxyOptions extends ProxyConfig {
  /** Where one-line messages go (stderr by default; tests collect them). */
  log?: (line: string) => void;
}

export interface Proxy {
  /** The address actually bound (the real port when asked for port 0). */
  readonly address: Address;
  /** Sockets the proxy holds right now: clients and backends. */
  openSockets(): number;
  /** Resolves when the proxy holds no socket. */
  whenIdle(): Promise<void>;
  /** Stop accepting, let the current exchange finish for up to deadlineMs, then cut it. */
  close(deadlineMs?: number): Promise<void>;
}

export async function startProxy(options: ProxyOptions): Promise<Proxy> {
  const log = options.log ?? ((line: string) => console.error(line));
  const sockets = new SocketTracker();
  // allowHalfOpen: a client that finishes sending may still be waiting for its answer.
  const server = net.createServer({ allowHalfOpen: true });
  server.on('connection', (socket) => sockets.track(socket));
  const queue = new AcceptQueue(server);

  server.listen(options.listen.port, options.listen.host);
  await once(server, 'listening');
  const { address: host, port } = server.address() as net.AddressInfo;

  const loop = serveOneAtATime(queue, options.backend, sockets, log);

  return {
    address: { host, port },
    openSockets: () => sockets.size,
    whenIdle: () => sockets.whenIdle(),
    async close(deadlineMs = 10_000) {
      server.close();
      queue.stop();
      const deadline = setTimeout(() => sockets.destroyAll(), deadlineMs);
      await loop;
      await sockets.whenIdle();
      clearTimeout(deadline);
    },
  };
}

async function serveOneAtATime(
  queue: AcceptQueue,
  backendAddress: Address,
  sockets: SocketTracker,
  log: (line: string) => void,
): Promise<void> {
  for (;;) {
    const client = await queue.accept(); // "blocks" until a client is there
    if (!client) return;
    await serveClient(client, backendAddress, sockets, log); // nobody else is served meanwhile
  }
}

async function serveClient(
  client: net.Socket,
  backendAddress: Address,
  sockets: SocketTracker,
  log: (line: string) => void,
): Promise<void> {
  const backend = sockets.track(
    net.connect({ host: backendAddress.host, port: backendAddress.port, allowHalfOpen: true }),
  );
  try {
    await once(backend, 'connect');
  } catch (err) {
    log(`backend ${formatAddress(backendAddress)} unreachable: ${(err as Error).message}`);
    client.destroy();
    return;
  }
  // Errors also reach the copy loops; this listener keeps a late one from crashing the process.
  backend.on('error', () => {});

  // A socket that is cut (not closed cleanly in both directions) takes its partner down
  // with it, and wakes a copy that may be waiting for its 'drain'.
  const hangUp = new AbortController();
  for (const socket of [client, backend]) {
    socket.once('close', () => {
      if (socket.readableEnded && socket.writableFinished) return;
      hangUp.abort();
      client.destroy();
      backend.destroy();
    });
  }
  try {
    await Promise.all([
      copy(client, backend, hangUp.signal),
      copy(backend, client, hangUp.signal),
    ]);
  } catch (err) {
    log(`connection aborted: ${(err as Error).message}`);
  } finally {
    client.destroy();
    backend.destroy();
  }
}

/** Copies one direction until end of stream, then passes the end (FIN) on. */
async function copy(from: net.Socket, to: net.Socket, signal: AbortSignal): Promise<void> {
  // Plain `for await` would destroy the socket at end of stream, killing the other direction.
  for await (const chunk of from.iterator({ destroyOnReturn: false })) {
    // write() returning false means "my buffer is full": wait until it drains.
    if (!to.write(chunk)) await once(to, 'drain', { signal });
  }
  to.end();
  // Wait until every byte has been handed to the kernel, or destroy() would drop the tail.
  if (!to.writableFinished) await once(to, 'finish', { signal });
}
