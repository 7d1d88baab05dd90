// Many connections at once. Each client gets its own backend connection and a tunnel;
// the event loop interleaves them all.
import net from 'node:net';
import { once } from 'node:events';
import { tunnel } from './pump.ts';
import { SocketTracker } from './sockets.ts';
import { clientLimit } from './fd-budget.ts';
import { BurstLog } from './burst-log.ts';
import { formatAddress, type Address } from './address.ts';
import type { ProxyConfig } from './cli.ts';

export interface ProxyOptions extends ProxyConfig {
  /** Where one-line messages go (stderr by default; tests collect them). */
  log?: (line: string) => void;
}

export interface ProxyStats {
  /** Client/backend pairs open right now. */
  livePairs: number;
  /** Pairs since start. */
  totalPairs: number;
  /** Most bytes ever queued in user space on one socket: what backpressure keeps small. */
  peakBufferedBytes: number;
}

export interface Proxy {
  /** The address actually bound (the real port when asked for port 0). */
  readonly address: Address;
  /** Sockets the proxy holds right now: clients and backends. */
  openSockets(): number;
  stats(): ProxyStats;
  /** Resolves when the proxy holds no socket. */
  whenIdle(): Promise<void>;
  /** Stop accepting, let open pairs finish for up to deadlineMs, then cut them. */
  close(deadlineMs?: number): Promise<void>;
}

export async function startProxy(options: ProxyOptions): Promise<Proxy> {
  const log = options.log ?? ((line: string) => console.error(line));
  const sockets = new SocketTracker();
  const stats: ProxyStats = { livePairs: 0, totalPairs: 0, peakBufferedBytes: 0 };
  const onBuffered = (bytes: number) => {
    if (bytes > stats.peakBufferedBytes) stats.peakBufferedBytes = bytes;
  };
  const acceptTrouble = new BurstLog(log, 'accept');
  const backendTrouble = new BurstLog(log, `backend ${formatAddress(options.backend)} unreachable`);

  // allowHalfOpen: a client that finishes sending may still be waiting for its answer.
  // noDelay: forward each chunk at once instead of letting Nagle's algorithm hold small ones.
  const server = net.createServer({ allowHalfOpen: true, noDelay: true }, (client) => {
    sockets.track(client);
    const backend = sockets.track(
      net.connect({ host: options.backend.host, port: options.backend.port, allowHalfOpen: true, noDelay: true }),
    );
    stats.livePairs++;
    stats.totalPairs++;
    let closed = 0;
    const pairClosed = () => {
      if (++closed === 2) stats.livePairs--;
    };
    client.once('close', pairClosed);
    backend.once('close', pairClosed);

    let connected = false;
    backend.once('connect', () => (connected = true));
    backend.once('error', (err) => {
      if (!connected) backendTrouble.event(err.message);
    });
    // Node queues writes until the backend connection is up; backpressure covers that wait too.
    tunnel(client, backend, { onBuffered });
  });

  // Past this many clients, Node closes new connections at once: each client needs a second
  // descriptor for its backend, and running out of them would fail everybody.
  const maxClients = clientLimit();
  if (maxClients !== undefined) server.maxConnections = maxClients;
  server.on('drop', () => acceptTrouble.event(`too many open files: at ${maxClients} clients, closing new connections`));

  server.listen(options.listen.port, options.listen.host);
  await once(server, 'listening');
  // From now on an accept error (EMFILE, ENFILE) is a moment's shortage, not a reason to stop.
  server.on('error', (err) => acceptTrouble.event(err.message));
  const { address: host, port } = server.address() as net.AddressInfo;

  return {
    address: { host, port },
    openSockets: () => sockets.size,
    stats: () => ({ ...stats }),
    whenIdle: () => sockets.whenIdle(),
    async close(deadlineMs = 10_000) {
      server.close();
      const deadline = setTimeout(() => sockets.destroyAll(), deadlineMs);
      await sockets.whenIdle();
      clearTimeout(deadline);
    },
  };
}
