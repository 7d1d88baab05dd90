// One port, a pool of backends. Each client connection is balanced on its own; a failed
// connect is retried on the next healthy backend before a single byte has been forwarded.
import net from 'node:net';
import { once } from 'node:events';
import { tunnel } from './pump.ts';
import { SocketTracker } from './sockets.ts';
import { clientLimit } from './fd-budget.ts';
import { BurstLog } from './burst-log.ts';
import { Peers, type Backend } from './peers.ts';
import { startHealthChecks } from './health-check.ts';
import { createStrategy, type Random } from './strategies/index.ts';
import type { Address } from './address.ts';
import type { ProxyConfig } from './config.ts';

/** Errors of our own process, not of the backend: out of file descriptors or local ports. */
const LOCAL_ERRORS = new Set(['EMFILE', 'ENFILE', 'EADDRNOTAVAIL', 'ENOBUFS']);

export interface ProxyOptions extends ProxyConfig {
  /** Where one-line messages go (stderr by default; tests collect them). */
  log?: (line: string) => void;
  /** Clock for passive health (tests move it by hand). */
  now?: () => number;
  /** Random source for the random strategies (tests seed it). */
  random?: Random;
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
  readonly peers: Peers;
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
  const peers = new Peers(options.backends, options.now ?? Date.now, log);
  const strategy = createStrategy(options.strategy, options.random);
  const stopHealthChecks = options.healthCheck
    ? startHealthChecks(peers.backends, options.healthCheck, log)
    : () => {};
  const stats: ProxyStats = { livePairs: 0, totalPairs: 0, peakBufferedBytes: 0 };
  const onBuffered = (bytes: number) => {
    if (bytes > stats.peakBufferedBytes) stats.peakBufferedBytes = bytes;
  };
  let outage = false; // logged once when no backend can be reached, once when one can again
  const acceptTrouble = new BurstLog(log, 'accept');
  const localTrouble = new BurstLog(log, 'cannot open a backend connection');

  /** Tries healthy backends not tried yet for this client until one connects. */
  const connectClient = (client: net.Socket, tried: Set<Backend>): void => {
    if (client.destroyed) return;
    const backend = strategy.pick(peers.available().filter((b) => !tried.has(b)));
    if (!backend) {
      if (!outage) {
        outage = true;
        log(`no healthy backend (${tried.size} tried for this client): closing clients until one recovers`);
      }
      client.destroy();
      return;
    }
    tried.add(backend);
    backend.active++;
    const socket = sockets.track(
      net.connect({ host: backend.address.host, port: backend.address.port, allowHalfOpen: true, noDelay: true }),
    );
    socket.once('close', () => backend.active--);
    socket.setTimeout(options.connectTimeoutMs, () =>
      socket.destroy(new Error(`connect timed out after ${options.connectTimeoutMs} ms`)),
    );
    // The client may leave while we are still connecting.
    const clientLeft = () => socket.destroy();
    client.once('close', clientLeft);

    let connected = false;
    socket.once('connect', () => {
      connected = true;
      socket.setTimeout(0);
      client.off('close', clientLeft);
      peers.connected(backend);
      if (outage) {
        outage = false;
        log(`backend ${backend.name} reachable: serving clients again`);
      }
      stats.livePairs++;
      stats.totalPairs++;
      let closed = 0;
      const pairClosed = () => {
        if (++closed === 2) stats.livePairs--;
      };
      client.once('close', pairClosed);
      socket.once('close', pairClosed);
      tunnel(client, socket, { onBuffered });
      client.resume(); // the bytes it sent meanwhile waited in the kernel; now they flow
    });
    socket.once('error', (err: NodeJS.ErrnoException) => {
      if (connected) return; // from here on, errors are the tunnel's business
      client.off('close', clientLeft);
      if (LOCAL_ERRORS.has(err.code ?? '')) {
        // Our own shortage (out of descriptors or ports), not the backend's fault: no mark, no retry.
        localTrouble.event(err.message);
        client.destroy();
        return;
      }
      peers.connectFailed(backend, err.message);
      // Nothing has been forwarded yet, so trying another backend is always safe.
      connectClient(client, tried);
    });
  };

  // allowHalfOpen: a client that finishes sending may still be waiting for its answer.
  // noDelay: forward each chunk at once instead of letting Nagle's algorithm hold small ones.
  // pauseOnConnect: keep the client's bytes in the kernel until a backend is connected.
  const server = net.createServer({ allowHalfOpen: true, noDelay: true, pauseOnConnect: true }, (client) => {
    sockets.track(client);
    client.on('error', () => {}); // before the tunnel exists, a reset just closes the client
    connectClient(client, new Set());
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
    peers,
    openSockets: () => sockets.size,
    stats: () => ({ ...stats }),
    whenIdle: () => sockets.whenIdle(),
    async close(deadlineMs = 10_000) {
      server.close();
      stopHealthChecks();
      const deadline = setTimeout(() => sockets.destroyAll(), deadlineMs);
      await sockets.whenIdle();
      clearTimeout(deadline);
    },
  };
}
