// An HTTP/1.1 load balancer. Client connections stay open across requests, every
// request is balanced on its own, and backend connections are kept in a pool for reuse.
import net from 'node:net';
import { once } from 'node:events';
import { SocketTracker } from './sockets.ts';
import { clientLimit } from './fd-budget.ts';
import { BurstLog } from './burst-log.ts';
import { Peers } from './upstream/peers.ts';
import { startHealthChecks } from './upstream/health-check.ts';
import { createStrategy, type Random } from './upstream/strategies/index.ts';
import { ConnectionPool } from './upstream/connection-pool.ts';
import { ClientConnection, type ClientContext } from './core/client-connection.ts';
import { Counters } from './counters.ts';
import { VirtualHosts } from './core/virtual-hosts.ts';
import { DEFAULT_UPSTREAM, type ProxyConfig } from './config.ts';
import type { Upstream } from './core/exchange.ts';
import type { Address } from './address.ts';

export interface ProxyOptions extends ProxyConfig {
  /** Where one-line messages go (stderr by default; tests collect them). */
  log?: (line: string) => void;
  /** Clock for passive health (tests move it by hand). */
  now?: () => number;
  /** Random source for the random strategies (tests seed it). */
  random?: Random;
}

export interface ProxyStats {
  /** Requests read from clients since start. */
  requests: number;
  /** Client connections open right now. */
  clientConnections: number;
  /** TCP connections opened to backends since start (the pool keeps this low). */
  backendConnectionsOpened: number;
  /** Most bytes ever queued in user space on one socket: what backpressure keeps small. */
  peakBufferedBytes: number;
}

export interface Proxy {
  /** The address actually bound (the real port when asked for port 0). */
  readonly address: Address;
  readonly upstreams: Map<string, Upstream>;
  readonly connections: ConnectionPool;
  /** Sockets the proxy holds right now: clients, backends, idle pooled connections. */
  openSockets(): number;
  stats(): ProxyStats;
  /** Resolves when the proxy holds no socket. */
  whenIdle(): Promise<void>;
  /**
   * Stop accepting, close idle connections, let requests in flight finish for up to deadlineMs,
   * then cut them. Resolves with how many sockets had to be cut.
   */
  close(deadlineMs?: number): Promise<number>;
}

export async function startProxy(options: ProxyOptions): Promise<Proxy> {
  const log = options.log ?? ((line: string) => console.error(line));
  const sockets = new SocketTracker();
  const maxClients = clientLimit();
  const acceptTrouble = new BurstLog(log, 'accept');
  const upstreams = new Map<string, Upstream>();
  for (const [name, upstream] of Object.entries(options.upstreams)) {
    upstreams.set(name, {
      name,
      peers: new Peers(upstream.backends, options.now ?? Date.now, log),
      strategy: createStrategy(upstream.strategy, options.random),
    });
  }
  const allBackends = [...upstreams.values()].flatMap((u) => u.peers.backends);
  const stopHealthChecks = options.healthCheck ? startHealthChecks(allBackends, options.healthCheck, log) : () => {};
  const connections = new ConnectionPool(options.backendKeepAlive, sockets, maxClients);
  const clients = new Set<ClientConnection>();
  const counters = new Counters();
  const context: ClientContext = {
    config: options,
    connections,
    log,
    localTrouble: new BurstLog(log, 'cannot open a backend connection'),
    counters,
    hosts: new VirtualHosts(options.virtualHosts, upstreams.has(DEFAULT_UPSTREAM) ? DEFAULT_UPSTREAM : undefined),
    upstreams,
  };

  // allowHalfOpen: a client that finishes sending may still be waiting for its answer.
  // noDelay: send each response piece at once instead of letting Nagle's algorithm hold it.
  const server = net.createServer({ allowHalfOpen: true, noDelay: true }, (socket) => {
    sockets.track(socket);
    const client = new ClientConnection(socket, context);
    clients.add(client);
    socket.once('close', () => clients.delete(client));
  });

  // Past maxClients, Node closes new connections at once: each client needs a second descriptor
  // for its backend, and running out of them would fail everybody.
  if (maxClients !== undefined) server.maxConnections = maxClients;
  server.on('drop', () => acceptTrouble.event(`too many open files: at ${maxClients} clients, closing new connections`));

  server.listen(options.listen.port, options.listen.host);
  await once(server, 'listening');
  // From now on an accept error (EMFILE, ENFILE) is a moment's shortage, not a reason to stop.
  server.on('error', (err) => acceptTrouble.event(err.message));
  const { address: host, port } = server.address() as net.AddressInfo;

  return {
    address: { host, port },
    upstreams,
    connections,
    openSockets: () => sockets.size,
    stats: () => ({
      requests: counters.requests,
      peakBufferedBytes: counters.peakBufferedBytes,
      clientConnections: clients.size,
      backendConnectionsOpened: connections.opened,
    }),
    whenIdle: () => sockets.whenIdle(),
    async close(deadlineMs = 10_000) {
      server.close();
      stopHealthChecks();
      for (const client of clients) client.shutdown();
      connections.closeIdle();
      let cut = 0;
      const deadline = setTimeout(() => {
        cut = sockets.size;
        sockets.destroyAll();
      }, deadlineMs);
      await sockets.whenIdle();
      clearTimeout(deadline);
      return cut;
    },
  };
}
