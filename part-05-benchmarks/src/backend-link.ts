// One attempt's connection to a backend: taken from the pool or opened fresh, its socket events
// turned into calls on the exchange, and a dead socket's failure classified by whose it is.
import type { BackendConnection, BackendUser, ConnectionPool } from './connection-pool.ts';
import type { Backend } from './peers.ts';
import type { Failure } from './retry-policy.ts';

/** Errors of our own process, not of the backend: out of file descriptors or local ports. */
const LOCAL_ERRORS = new Set(['EMFILE', 'ENFILE', 'EADDRNOTAVAIL', 'ENOBUFS']);

/** What the exchange hears from its backend link. */
export interface LinkEvents {
  backendConnected(): void;
  backendData(chunk: Buffer): void;
  backendEnd(): void;
  backendDrain(): void;
  /** The socket died (or the connect took too long) while it was ours. */
  backendFailed(kind: Failure, reason: string): void;
}

export class BackendLink implements BackendUser {
  readonly conn: BackendConnection;
  /** The connection is up (a pooled one is from the start). */
  connected: boolean;

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
    this.conn.user = this;
    if (!idle) this.conn.waitAtMost(connectTimeoutMs);
  }

  /** The socket goes back to the pool or is destroyed: its events are no longer ours. */
  detach(): void {
    this.conn.user = undefined;
    if (!this.connected) this.conn.waitAtMost(0);
  }

  socketConnected(): void {
    this.conn.waitAtMost(0);
    this.connected = true;
    this.events.backendConnected();
  }

  socketData(chunk: Buffer): void {
    this.events.backendData(chunk);
  }

  socketEnd(): void {
    this.events.backendEnd();
  }

  socketDrain(): void {
    this.events.backendDrain();
  }

  socketTimeout(): void {
    this.events.backendFailed('timeout', `connect timed out after ${this.connectTimeoutMs} ms`);
  }

  socketClosed(err: NodeJS.ErrnoException | undefined): void {
    if (err?.code !== undefined && LOCAL_ERRORS.has(err.code)) return this.events.backendFailed('local', `cannot open a connection: ${err.message}`);
    this.events.backendFailed(this.connected ? 'reset' : 'connect', err?.message ?? 'backend closed the connection');
  }
}
