// Reload generations: everything a configuration decides (upstreams, health checks, the backend
// connection pool, the context its clients run with), built whole, and replaced whole on SIGHUP.
// Clients keep the generation they connected under; an old one is dropped when its last client goes.
import type net from 'node:net';
import { Peers } from './upstream/peers.ts';
import { startHealthChecks } from './upstream/health-check.ts';
import { createStrategy, type Random } from './upstream/strategies/index.ts';
import { ConnectionPool } from './upstream/connection-pool.ts';
import { ClientConnection, type ClientContext } from './core/client-connection.ts';
import { VirtualHosts } from './core/virtual-hosts.ts';
import { DEFAULT_UPSTREAM, type ProxyConfig } from './config.ts';
import type { Upstream } from './core/exchange.ts';
import type { SocketTracker } from './sockets.ts';
import type { BurstLog } from './burst-log.ts';
import type { Counters } from './counters.ts';
import type { AccessLog } from './observe/access-log.ts';
import { BackendMetrics } from './observe/metrics.ts';

/** Everything that a configuration decides; replaced whole on reload. */
export interface Generation {
  context: ClientContext;
  connections: ConnectionPool;
  clients: Set<ClientConnection>;
  stopHealthChecks: () => void;
}

/** What every generation shares, and what outlives a reload. */
export interface Shared {
  log: (line: string) => void;
  now: () => number;
  random: Random | undefined;
  sockets: SocketTracker;
  maxClients: number | undefined;
  counters: Counters;
  localTrouble: BurstLog;
  accessLog: AccessLog | undefined;
}

export class Generations {
  current: Generation;
  /** How many configurations have been in force (1, then one more per reload). */
  number = 1;
  /** The current generation, and retired ones until their last client has gone. */
  private readonly all = new Set<Generation>();
  /** Counters per upstream and backend that survive a reload, as long as the backend stays. */
  private readonly backendMetrics = new Map<string, BackendMetrics>();

  constructor(
    config: ProxyConfig,
    private readonly shared: Shared,
  ) {
    this.current = this.build(config);
    this.all.add(this.current);
  }

  /**
   * A new client connection runs under the current generation for its whole life. `own` gives it
   * a context of its own, made from the generation's (a TLS connection's: see tls/termination.ts).
   */
  adopt(socket: net.Socket, own?: (context: ClientContext) => ClientContext): void {
    const generation = this.current;
    const client = new ClientConnection(socket, own ? own(generation.context) : generation.context);
    generation.clients.add(client);
    socket.once('close', () => {
      generation.clients.delete(client);
      this.forgetIfDrained(generation);
    });
  }

  /** New connections get `config`; open ones finish on the old generation, which then drains. */
  reload(config: ProxyConfig): void {
    this.number++;
    const old = this.current;
    this.current = this.build(config);
    this.all.add(this.current);
    retire(old);
    this.forgetIfDrained(old);
  }

  /** Every generation's clients close when idle, or after their response (shutdown). */
  retireAll(): void {
    for (const generation of this.all) retire(generation);
  }

  /** Client connections of every generation still in use. */
  *clients(): Iterable<ClientConnection> {
    for (const generation of this.all) yield* generation.clients;
  }

  get size(): number {
    return this.all.size;
  }

  private build(config: ProxyConfig): Generation {
    const { log, now, random, sockets, maxClients, counters, localTrouble, accessLog } = this.shared;
    const upstreams = new Map<string, Upstream>();
    for (const [name, upstream] of Object.entries(config.upstreams)) {
      const peers = new Peers(upstream.backends, now, log);
      for (const backend of peers.backends) backend.metrics = this.metricsFor(name, backend.hostPort);
      upstreams.set(name, { name, peers, strategy: createStrategy(upstream.strategy, random) });
    }
    const allBackends = [...upstreams.values()].flatMap((u) => u.peers.backends);
    const connections = new ConnectionPool(config.backendKeepAlive, sockets, maxClients, counters);
    const hosts = new VirtualHosts(config.virtualHosts, upstreams.has(DEFAULT_UPSTREAM) ? DEFAULT_UPSTREAM : undefined);
    return {
      connections,
      clients: new Set(),
      stopHealthChecks: config.healthCheck ? startHealthChecks(allBackends, config.healthCheck, log) : () => {},
      context: { config, connections, log, localTrouble, counters, hosts, upstreams, accessLog },
    };
  }

  private metricsFor(upstream: string, backend: string): BackendMetrics {
    const key = `${upstream} ${backend}`;
    let metrics = this.backendMetrics.get(key);
    if (!metrics) this.backendMetrics.set(key, (metrics = new BackendMetrics()));
    return metrics;
  }

  private forgetIfDrained(generation: Generation): void {
    if (generation !== this.current && generation.clients.size === 0) this.all.delete(generation);
  }
}

/** An old generation drains: idle clients close now, busy ones after their response. */
function retire(old: Generation): void {
  old.stopHealthChecks();
  old.connections.retire();
  for (const client of old.clients) client.shutdown();
}
