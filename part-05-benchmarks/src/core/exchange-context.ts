// What an exchange is given: the request, where to send it, and the proxy around it.
import type net from 'node:net';
import type { Framing } from '../http/body.ts';
import type { RequestHead } from '../http/parser.ts';
import type { ConnectionPool } from '../upstream/connection-pool.ts';
import type { Peers } from '../upstream/peers.ts';
import type { Strategy } from '../upstream/strategies/index.ts';
import type { ProxyConfig } from '../config.ts';
import type { BurstLog } from '../burst-log.ts';
import type { Counters } from '../counters.ts';
import type { AccessLogWriter } from '../observe/access-log.ts';

/** A named group of backends with its strategy (nginx's `upstream` block). */
export interface Upstream {
  name: string;
  peers: Peers;
  strategy: Strategy;
}

/** What an exchange needs from the proxy around it. */
export interface ExchangeContext {
  config: ProxyConfig;
  connections: ConnectionPool;
  /** The error log (stderr; tests collect it). */
  log: (line: string) => void;
  /** Our own shortage (out of descriptors): logged once per burst, not per request. */
  localTrouble: BurstLog;
  counters: Counters;
  /** One line per request, when configured. */
  accessLog: AccessLogWriter | undefined;
  /** "https" for a connection to a TLS listener (X-Forwarded-Proto); absent for plain HTTP. */
  scheme?: 'https';
}

/**
 * What the client connection hears from its exchange, named for when each fires. Called only by
 * the exchange, in this order: bodyRead at most once, handOver at most once, finished exactly once, last.
 */
export interface ExchangeHooks {
  /** The request body has been read to its end; `rest` is what the client sent after it (pipelined requests). Only for requests with a body. */
  bodyRead(rest: Buffer): void;
  /** A 101 made the exchange a tunnel: the client socket is handed over; returns what it sent after the request. */
  handOver(): Buffer;
  /** The exchange is over: the client connection may carry the next request (keep), must close (close), or belongs to a tunnel (tunnel). */
  finished(next: 'keep' | 'close' | 'tunnel'): void;
}

export interface ExchangeOptions {
  client: net.Socket;
  head: RequestHead;
  /** How the request body is delimited. */
  framing: Framing;
  upstream: Upstream;
  /** The client connection may carry another request after this one (decided from the request head and its count). */
  keepClient: boolean;
  /** The protocol the client asks to switch to (Upgrade), if any. */
  upgrade: string | undefined;
  context: ExchangeContext;
  hooks: ExchangeHooks;
}
