// An HTTP/1.1 load balancer. Client connections stay open across requests, every
// request is balanced on its own, and backend connections are kept in a pool for reuse.
import net from 'node:net';
import { once } from 'node:events';
import { SocketTracker } from './sockets.ts';
import { clientLimit } from './fd-budget.ts';
import { BurstLog } from './burst-log.ts';
import type { Random } from './upstream/strategies/index.ts';
import type { ConnectionPool } from './upstream/connection-pool.ts';
import { Counters } from './counters.ts';
import type { ProxyConfig } from './config.ts';
import { Generations } from './generations.ts';
import type { Upstream } from './core/exchange.ts';
import type { Address } from './address.ts';
import { RateMeter } from './observe/metrics.ts';
import { AccessLog } from './observe/access-log.ts';
import { backendStatus, type ProxyStatus } from './observe/status.ts';

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
  /** Configurations still in use: the current one, and old ones that still have clients. */
  generations: number;
}

export interface Proxy {
  /** The address actually bound (the real port when asked for port 0). */
  readonly address: Address;
  readonly upstreams: Map<string, Upstream>;
  readonly connections: ConnectionPool;
  /** Sockets the proxy holds right now: clients, backends, idle pooled connections. */
  openSockets(): number;
  stats(): ProxyStats;
  /** Everything the status page shows, for this process. */
  status(): ProxyStatus;
  /** Resolves when the proxy holds no socket. */
  whenIdle(): Promise<void>;
  /** Use a new configuration for new connections; open ones finish on the old one (SIGHUP). */
  reload(config: ProxyConfig): void;
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
  const counters = new Counters();
  // For the status page: a rate and the time since start.
  const startedAt = Date.now();
  const rate = new RateMeter();
  const sampler = setInterval(() => rate.sample(performance.now(), counters.requests), 1000).unref();
  const accessLog = options.accessLog !== undefined ? new AccessLog(options.accessLog, log) : undefined;
  const generations = new Generations(options, {
    log,
    now: options.now ?? Date.now,
    random: options.random,
    sockets,
    maxClients,
    counters,
    localTrouble: new BurstLog(log, 'cannot open a backend connection'),
    accessLog,
  });

  // allowHalfOpen: a client that finishes sending may still be waiting for its answer.
  // noDelay: send each response piece at once instead of letting Nagle's algorithm hold it.
  const server = net.createServer({ allowHalfOpen: true, noDelay: true }, (socket) => {
    sockets.track(socket);
    counters.handled++;
    generations.adopt(socket);
  });

  // Past maxClients, Node closes new connections at once: each client needs a second descriptor
  // for its backend, and running out of them would fail everybody.
  if (maxClients !== undefined) server.maxConnections = maxClients;
  server.on('drop', () => {
    counters.dropped++;
    acceptTrouble.event(`too many open files: at ${maxClients} clients, closing new connections`);
  });

  server.listen(options.listen.port, options.listen.host);
  await once(server, 'listening');
  // From now on an accept error (EMFILE, ENFILE) is a moment's shortage, not a reason to stop.
  server.on('error', (err) => acceptTrouble.event(err.message));
  const { address: host, port } = server.address() as net.AddressInfo;

  return {
    address: { host, port },
    get upstreams() {
      return generations.current.context.upstreams;
    },
    get connections() {
      return generations.current.connections;
    },
    openSockets: () => sockets.size,
    stats: () => ({
      requests: counters.requests,
      peakBufferedBytes: counters.peakBufferedBytes,
      clientConnections: [...generations.clients()].length,
      backendConnectionsOpened: counters.backendConnectionsOpened,
      generations: generations.size,
    }),
    status(): ProxyStatus {
      const connections = { accepted: counters.handled + counters.dropped, handled: counters.handled, active: 0, reading: 0, writing: 0, waiting: 0 };
      for (const client of generations.clients()) {
        connections.active++;
        if (client.phase.name === 'idle') connections.waiting++;
        else if (client.phase.name === 'head') connections.reading++;
        else connections.writing++; // serving a request, tunnelling, or closing
      }
      const { current } = generations;
      const now = performance.now();
      return {
        uptimeSeconds: (Date.now() - startedAt) / 1000,
        workers: options.workers,
        generation: generations.number,
        connections,
        requests: { total: counters.requests, perSecond: rate.perSecond(), responses: [...counters.responses] },
        accessLogDropped: accessLog?.dropped ?? 0,
        upstreams: [...current.context.upstreams.values()].map((upstream) => ({
          name: upstream.name,
          strategy: current.context.config.upstreams[upstream.name]!.strategy,
          backends: upstream.peers.backends.map((b) => backendStatus(b, current.connections.idleCount(b), now)),
        })),
      };
    },
    whenIdle: () => sockets.whenIdle(),
    reload(config: ProxyConfig) {
      if (config.listen.host !== options.listen.host || config.listen.port !== options.listen.port) {
        log(`reload: the listen address cannot change without a restart; still on ${host}:${port}`);
      }
      if (config.workers !== options.workers) {
        log(`reload: the number of workers cannot change without a restart; still ${options.workers}`);
      }
      if (config.accessLog !== options.accessLog || config.admin?.port !== options.admin?.port || config.admin?.host !== options.admin?.host) {
        log('reload: the access log and the admin address cannot change without a restart');
      }
      generations.reload(config);
      log('reload: new configuration in force for new connections; open ones finish on the old one');
    },
    async close(deadlineMs = 10_000) {
      server.close();
      clearInterval(sampler);
      generations.retireAll();
      let cut = 0;
      const deadline = setTimeout(() => {
        cut = sockets.size;
        sockets.destroyAll();
      }, deadlineMs);
      await sockets.whenIdle();
      clearTimeout(deadline);
      await accessLog?.close();
      return cut;
    },
  };
}
