// Idle keep-alive connections to backends, so a request need not pay for a new TCP connection.
// nginx: `keepalive 32;` inside an upstream block.
import net from 'node:net';
import type { Backend } from './peers.ts';
import type { SocketTracker } from '../sockets.ts';
import type { BackendKeepAliveConfig } from '../config.ts';

export interface BackendConnection {
  readonly socket: net.Socket;
  readonly backend: Backend;
  /** Requests sent on this connection so far. */
  requests: number;
  /** Whether it came from the idle pool (and so may have been closed by the backend meanwhile). */
  reused: boolean;
  /** Why it closed, if it said ('close' follows 'error'). */
  error?: NodeJS.ErrnoException;
}

export class ConnectionPool {
  private readonly idle = new Map<Backend, BackendConnection[]>();
  private live = 0;
  opened = 0;

  constructor(
    private readonly settings: BackendKeepAliveConfig,
    private readonly sockets: SocketTracker,
    /** Most backend connections open at once (see fd-budget.ts); idle ones make way past it. */
    private readonly maxOpen = Infinity,
  ) {}

  /** The most recently used idle connection to this backend, if any. */
  takeIdle(backend: Backend): BackendConnection | undefined {
    const conn = this.idle.get(backend)?.pop();
    if (!conn) return undefined;
    conn.socket.setTimeout(0);
    conn.socket.removeAllListeners('data');
    conn.socket.removeAllListeners('timeout');
    conn.reused = true;
    return conn;
  }

  /** A new connection; the caller waits for 'connect' or 'error'. */
  open(backend: Backend): BackendConnection {
    if (this.live >= this.maxOpen) this.closeOneIdle(); // its descriptor is worth more to this request
    this.opened++;
    const socket = this.sockets.track(
      net.connect({ host: backend.address.host, port: backend.address.port, allowHalfOpen: true, noDelay: true }),
    );
    const conn: BackendConnection = { socket, backend, requests: 0, reused: false };
    socket.on('error', (err) => (conn.error = err)); // whoever uses it hears of it through 'close'
    this.live++;
    socket.once('close', () => {
      this.live--;
      this.forget(backend, socket);
    });
    return conn;
  }

  /** Returns a connection after a complete exchange; closes it if it cannot be kept. */
  release(conn: BackendConnection): void {
    const list = this.idle.get(conn.backend) ?? [];
    const { socket } = conn;
    if (list.length >= this.settings.maxIdle || conn.requests >= this.settings.maxRequests || socket.destroyed) {
      socket.destroy();
      return;
    }
    socket.removeAllListeners('data');
    socket.removeAllListeners('end');
    socket.removeAllListeners('drain');
    socket.resume();
    // An idle connection should say nothing. Bytes or a FIN mean it is no longer usable.
    socket.on('data', () => socket.destroy());
    socket.once('end', () => socket.destroy());
    socket.setTimeout(this.settings.idleTimeoutMs, () => socket.destroy());
    list.push(conn);
    this.idle.set(conn.backend, list);
  }

  idleCount(backend: Backend): number {
    return this.idle.get(backend)?.length ?? 0;
  }

  closeIdle(): void {
    for (const list of this.idle.values()) for (const conn of list.splice(0)) conn.socket.destroy();
  }

  /** Closes the idle connection that has waited longest, to any backend. */
  private closeOneIdle(): void {
    for (const list of this.idle.values()) {
      const oldest = list.shift();
      if (oldest) return void oldest.socket.destroy();
    }
  }

  private forget(backend: Backend, socket: net.Socket): void {
    const list = this.idle.get(backend);
    const at = list?.findIndex((c) => c.socket === socket) ?? -1;
    if (at >= 0) list!.splice(at, 1);
  }
}
