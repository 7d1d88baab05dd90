// Idle keep-alive connections to backends, so a request need not pay for a new TCP connection.
// nginx: `keepalive 32;` inside an upstream block.
import net from 'node:net';
import type { Backend } from './peers.ts';
import type { SocketTracker } from '../sockets.ts';
import type { BackendKeepAliveConfig } from '../config.ts';
import { Deadline, type DeadlineOwner } from '../core/deadlines.ts';
import { Counters } from '../counters.ts';

/** Whoever uses a backend connection for now (its exchange) hears its socket's events, from the moment it sets `user` until it clears it. */
export interface BackendUser {
  backendConnected(): void;
  backendData(chunk: Buffer): void;
  backendEnd(): void;
  backendDrain(): void;
  /** The connect timeout passed. */
  backendTimeout(): void;
  /** The socket is gone; `error` is why, if it said. */
  backendClosed(error: NodeJS.ErrnoException | undefined): void;
}

/**
 * One TCP connection to a backend. Its listeners are attached once, when it opens, and pass
 * each event to its current `user`. A request only sets `user`; it adds and removes nothing.
 * (rsp's handler objects, nginx's c->read->handler.) With no user, the connection is idle:
 * bytes, a FIN or a timeout from it mean it is no longer usable.
 */
export class BackendConnection implements DeadlineOwner {
  /** Requests sent on this connection so far. */
  requests = 0;
  /** Whether it came from the idle pool (and so may have been closed by the backend meanwhile). */
  reused = false;
  user: BackendUser | undefined;
  private error: NodeJS.ErrnoException | undefined;
  /** Bounds the connect while a user waits for it, and the wait in the idle pool. */
  private readonly deadline = new Deadline(0, this);

  constructor(
    readonly socket: net.Socket,
    readonly backend: Backend,
  ) {
    socket.on('connect', this.onConnect);
    socket.on('data', this.onData);
    socket.on('end', this.onEnd);
    socket.on('drain', this.onDrain);
    socket.on('error', this.onError);
    socket.on('close', this.onClose);
  }

  /** Gives up on the connection after `ms` (0: never). */
  waitAtMost(ms: number): void {
    if (ms > 0) this.deadline.arm(ms);
    else this.deadline.stop();
  }

  expired(): void {
    if (this.user) this.user.backendTimeout();
    else this.socket.destroy(); // idle too long
  }

  /** For a tunnel (101 Switching Protocols): the byte pump owns the socket from now on. */
  handOver(): void {
    this.user = undefined;
    this.deadline.stop();
    this.socket.off('connect', this.onConnect);
    this.socket.off('data', this.onData);
    this.socket.off('end', this.onEnd);
    this.socket.off('drain', this.onDrain);
    this.socket.off('error', this.onError);
    this.socket.off('close', this.onClose);
  }

  private readonly onConnect = (): void => this.user?.backendConnected();
  private readonly onData = (chunk: Buffer): void => (this.user ? this.user.backendData(chunk) : void this.socket.destroy());
  private readonly onEnd = (): void => (this.user ? this.user.backendEnd() : void this.socket.destroy());
  private readonly onDrain = (): void => this.user?.backendDrain();
  private readonly onError = (err: NodeJS.ErrnoException): void => {
    this.error = err; // 'close' follows and reports it
  };
  private readonly onClose = (): void => {
    this.deadline.stop();
    this.user?.backendClosed(this.error);
  };
}

export class ConnectionPool {
  private readonly idle = new Map<Backend, BackendConnection[]>();
  private live = 0;
  private retired = false;

  constructor(
    private readonly settings: BackendKeepAliveConfig,
    private readonly sockets: SocketTracker,
    /** Most backend connections open at once (see fd-budget.ts); idle ones make way past it. */
    private readonly maxOpen = Infinity,
    /** Counts the connections opened, across reloads. */
    private readonly counters = new Counters(),
  ) {}

  /** The most recently used idle connection to this backend, if any. */
  takeIdle(backend: Backend): BackendConnection | undefined {
    const conn = this.idle.get(backend)?.pop();
    if (!conn) return undefined;
    conn.waitAtMost(0);
    conn.reused = true;
    return conn;
  }

  /** A new connection; its user hears 'connect' or 'close'. */
  open(backend: Backend): BackendConnection {
    if (this.live >= this.maxOpen) this.closeOneIdle(); // its descriptor is worth more to this request
    this.counters.backendConnectionsOpened++;
    const socket = this.sockets.track(
      net.connect({ host: backend.address.host, port: backend.address.port, allowHalfOpen: true, noDelay: true }),
    );
    const conn = new BackendConnection(socket, backend);
    this.live++;
    socket.once('close', () => {
      this.live--;
      this.forget(conn);
    });
    return conn;
  }

  /** Returns a connection after a complete exchange; closes it if it cannot be kept. */
  release(conn: BackendConnection): void {
    conn.user = undefined;
    const list = this.idle.get(conn.backend) ?? [];
    const { socket } = conn;
    if (this.retired || list.length >= this.settings.maxIdle || conn.requests >= this.settings.maxRequests || socket.destroyed) {
      socket.destroy();
      return;
    }
    socket.resume();
    conn.waitAtMost(this.settings.idleTimeoutMs);
    list.push(conn);
    this.idle.set(conn.backend, list);
  }

  idleCount(backend: Backend): number {
    return this.idle.get(backend)?.length ?? 0;
  }

  /** Closes the idle connections, and every connection given back from now on. */
  retire(): void {
    this.retired = true;
    for (const list of this.idle.values()) for (const conn of list.splice(0)) conn.socket.destroy();
  }

  /** Closes the idle connection that has waited longest, to any backend. */
  private closeOneIdle(): void {
    for (const list of this.idle.values()) {
      const oldest = list.shift();
      if (oldest) return void oldest.socket.destroy();
    }
  }

  private forget(conn: BackendConnection): void {
    const list = this.idle.get(conn.backend);
    const at = list?.indexOf(conn) ?? -1;
    if (at >= 0) list!.splice(at, 1);
  }
}
