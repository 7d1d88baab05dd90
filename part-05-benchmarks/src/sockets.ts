// Keeps every socket the proxy holds, so tests and shutdown can ask "is anything still open?".
import type { Socket } from 'node:net';

export class SocketTracker {
  private readonly open = new Set<Socket>();
  private idleWaiters: Array<() => void> = [];

  track(socket: Socket): Socket {
    this.open.add(socket);
    socket.once('close', () => {
      this.open.delete(socket);
      if (this.open.size === 0) this.wakeIdleWaiters();
    });
    return socket;
  }

  get size(): number {
    return this.open.size;
  }

  /** Resolves once no socket is open (at once if none is). */
  whenIdle(): Promise<void> {
    if (this.open.size === 0) return Promise.resolve();
    return new Promise((resolve) => this.idleWaiters.push(resolve));
  }

  destroyAll(): void {
    for (const socket of this.open) socket.destroy();
  }

  private wakeIdleWaiters(): void {
    const waiters = this.idleWaiters;
    this.idleWaiters = [];
    for (const wake of waiters) wake();
  }
}
