// One attempt's connection to a backend: taken from the pool or opened fresh, its socket events
// turned into calls on the exchange, and a dead socket's failure classified by whose it is.
import type { BackendConnection, ConnectionPool } from './connection-pool.ts';
import type { Backend } from './pool.ts';
import type { Failure } from './retry-policy.ts';

/** Errors of our own process, not of the backend: out of file descriptors or local ports. */
const LOCAL_ERRORS = new Set(['EMFILE', 'ENFILE', 'EADDRNOTAVAIL', 'ENOBUFS']);

export interface LinkEvents {
  connected(): void;
  data(chunk: Buffer): void;
  end(): void;
  drain(): void;
  /** The socket died (or the connect took too long) while it was ours. */
  failed(kind: Failure, reason: string): void;
}

export class BackendLink {
  readonly conn: BackendConnection;
  /** The connection is up (a pooled one is from the start). */
  connected: boolean;
  private error: NodeJS.ErrnoException | undefined;

  constructor(
    connections: ConnectionPool,
    backend: Backend,
    /** Only a fresh connection will do (the stale-socket retry). */
    fresh: boolean,
    private readonly connectTimeoutMs: number,
    private readonly events: LinkEvents,
  ) {
    const idle = fresh ? undefined : connections.takeIdle(backend);
    this.conn = idle ?? connections.open(backend);
    this.connected = idle !== undefined;
    const { socket } = this.conn;
    socket.on('close', this.onClose);
    socket.on('error', this.onError);
    if (idle) return;
    socket.setTimeout(connectTimeoutMs);
    socket.on('timeout', this.onConnectTimeout);
    socket.once('connect', this.onConnect);
  }

  /** From now on, the backend's bytes, FIN and drains go to the exchange. */
  listen(): void {
    const { socket } = this.conn;
    socket.on('data', this.events.data);
    socket.on('end', this.events.end);
    socket.on('drain', this.events.drain);
  }

  /** Removes every listener of ours: the socket goes back to the pool or is destroyed. */
  detach(): void {
    const { socket } = this.conn;
    socket.setTimeout(0);
    socket.off('connect', this.onConnect);
    socket.off('timeout', this.onConnectTimeout);
    socket.off('close', this.onClose);
    socket.off('error', this.onError);
    socket.off('data', this.events.data);
    socket.off('end', this.events.end);
    socket.off('drain', this.events.drain);
  }

  private readonly onConnect = (): void => {
    this.conn.socket.setTimeout(0);
    this.conn.socket.off('timeout', this.onConnectTimeout);
    this.connected = true;
    this.events.connected();
  };

  private readonly onConnectTimeout = (): void => {
    this.events.failed('timeout', `connect timed out after ${this.connectTimeoutMs} ms`);
  };

  private readonly onError = (err: NodeJS.ErrnoException): void => {
    this.error = err; // 'close' follows and reports it
  };

  private readonly onClose = (): void => {
    const err = this.error;
    if (err?.code !== undefined && LOCAL_ERRORS.has(err.code)) return this.events.failed('local', `cannot open a connection: ${err.message}`);
    this.events.failed(this.connected ? 'reset' : 'connect', err?.message ?? 'backend closed the connection');
  };
}
