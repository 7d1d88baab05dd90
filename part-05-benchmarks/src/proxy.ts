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
import { PLAIN_HTTP, TlsTermination } from './tls/termination.ts';
import { recordRefusal } from './core/request-record.ts';
import type { Outcome } from './core/outcome.ts';
import { hasTls, type ListenerConfig } from './tls/tls-config.ts';

export interface ProxyOptions extends ProxyConfig {
  /** Where one-line messages go (stderr by default; tests collect them). */
  log?: (line: string) => void;
  /** Clock for passive health (tests move it by hand). */
  now?: () => number;
  /** Random source for the random strategies (tests seed it). */
  random?: Random;
  /** The session ticket key, from the primary (workers share it); a new one when absent. */
  ticketKeys?: Buffer;
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
  /** Every listener's address, in config order (the first is `address`). */
  readonly addresses: Address[];
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
  /** A new session ticket key (rotation): tickets made with the old one need a full handshake. */
  setTicketKeys(keys: Buffer): void;
  /**
   * Stop accepting, close idle connections, let requests in flight finish for up to deadlineMs,
   * then cut them. Resolves with how many sockets had to be cut.
   */
  close(deadlineMs?: number): Promise<number>;
}

/** Plain HTTP on a TLS port: the proxy refused it in the request phase (PR), as any malformed request. */
const PLAIN_HTTP_SENT: Outcome & { status: number } = { by: 'proxy', in: 'request', status: 400, reason: PLAIN_HTTP, timedOut: false };

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

  const termination = hasTls(options) ? new TlsTermination(options, options.ticketKeys) : undefined;

  // One server per listener, in config order. allowHalfOpen: a client that finishes sending may
  // still be waiting for its answer. noDelay: send each response piece at once instead of letting
  // Nagle's algorithm hold it.
  const servers = options.listeners.map((_, listener) => {
    const server = net.createServer({ allowHalfOpen: true, noDelay: true }, (socket) => {
      sockets.track(socket); // the TCP socket: a TLS socket over it closes with it
      counters.handled++;
      if (!termination?.isTls(listener)) return generations.adopt(socket);
      // Once its handshake is done, a TLS connection runs with a context of its own (X-Forwarded-Proto, SNI).
      termination.accept(
        socket,
        listener,
        (secure) => generations.adopt(secure, (context) => termination.contextFor(secure, context, listener)),
        (requestLine, bytes) => recordRefusal(generations.current.context, socket.remoteAddress ?? '-', PLAIN_HTTP_SENT, bytes, undefined, requestLine),
      );
    });
    // Past maxClients, Node closes new connections at once: each client needs a second descriptor
    // for its backend, and running out of them would fail everybody.
    if (maxClients !== undefined) server.maxConnections = maxClients;
    server.on('drop', () => {
      counters.dropped++;
      acceptTrouble.event(`too many open files: at ${maxClients} clients, closing new connections`);
    });
    return server;
  });

  const addresses: Address[] = [];
  for (const [i, server] of servers.entries()) {
    // --listen overrides the first listener's address.
    const at = i === 0 ? options.listen : options.listeners[i]!.address;
    server.listen(at.port, at.host);
    await once(server, 'listening');
    // From now on an accept error (EMFILE, ENFILE) is a moment's shortage, not a reason to stop.
    server.on('error', (err) => acceptTrouble.event(err.message));
    const { address: host, port } = server.address() as net.AddressInfo;
    addresses.push({ host, port });
  }
  const { host, port } = addresses[0]!;

  return {
    address: { host, port },
    addresses,
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
        ...(termination && { tls: termination.status() }),
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
      if (config.listeners.length === options.listeners.length && config.listeners.every((l, i) => sameListener(l, options.listeners[i]!, i))) {
        const kept = termination?.reload(config); // new certificates for new connections
        if (kept) log(kept);
      } else log('reload: listeners cannot be added, removed or changed to or from TLS without a restart; certificates stay as they were');
      generations.reload(config);
      log('reload: new configuration in force for new connections; open ones finish on the old one');
    },
    setTicketKeys: (keys: Buffer) => termination?.setTicketKeys(keys),
    async close(deadlineMs = 10_000) {
      for (const server of servers) server.close();
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

/** The same address (the first one is checked as `listen`), and both plain or both TLS. */
function sameListener(a: ListenerConfig, b: ListenerConfig, index: number): boolean {
  const sameAddress = index === 0 || (a.address.host === b.address.host && a.address.port === b.address.port);
  return sameAddress && (a.certificate === undefined) === (b.certificate === undefined);
}
