// What an exchange is given: the request, where to send it, and the proxy around it.
import type net from 'node:net';
import type { Framing } from './http/body.ts';
import type { RequestHead } from './http/parser.ts';
import type { ConnectionPool } from './connection-pool.ts';
import type { Pool } from './pool.ts';
import type { Strategy } from './strategies/index.ts';
import type { ProxyConfig } from './config.ts';
import type { AccessLogWriter } from './access-log.ts';

/** A named group of backends with its strategy (nginx's `upstream` block). */
export interface Upstream {
  name: string;
  pool: Pool;
  strategy: Strategy;
}

/** What an exchange needs from the proxy around it. */
export interface ExchangeContext {
  config: ProxyConfig;
  connections: ConnectionPool;
  log: (line: string) => void;
  /** Our own shortage (out of descriptors): logged once per burst, not per request. */
  onLocalError: (message: string) => void;
  /** Records bytes queued in user space on a socket we wrote to. */
  onBuffered: (bytes: number) => void;
  /** Counts a response sent to a client, by its status. */
  onResponse: (status: number) => void;
  /** One line per request, when configured. */
  accessLog: AccessLogWriter | undefined;
  /** "https" for a connection to a TLS listener (X-Forwarded-Proto); absent for plain HTTP. */
  scheme?: 'https';
}

/** What the client connection hears from its exchange. */
export interface ExchangeHooks {
  /** The whole request has gone to the backend; `rest` is what the client sent after it (pipelined requests). */
  requestForwarded(rest: Buffer): void;
  /** Asked when the response head is written: may the client connection carry another request? */
  keepAlive(): boolean;
  /**
   * The exchange is over, called once, last: the client connection may carry the next request
   * (keep), must close (close), or now belongs to a tunnel (tunnel).
   */
  finished(next: 'keep' | 'close' | 'tunnel'): void;
  /** For an upgrade: hand over the client socket with whatever it sent after the request. */
  takeClient(): Buffer;
}

export interface ExchangeOptions {
  client: net.Socket;
  head: RequestHead;
  /** How the request body is delimited. */
  framing: Framing;
  upstream: Upstream;
  /** The protocol the client asks to switch to (Upgrade), if any. */
  upgrade: string | undefined;
  context: ExchangeContext;
  hooks: ExchangeHooks;
}
