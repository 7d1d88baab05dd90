// Turns the server's 'connection' events into an awaitable accept(), like accept(2) in C.
// Connections that arrive while we are busy wait here, as they would in the kernel's backlog.
import type { Server, Socket } from 'node:net';

export class AcceptQueue {
  private readonly waiting: Socket[] = [];
  private taker: ((socket: Socket | undefined) => void) | undefined;
  private closed = false;

  constructor(server: Server) {
    server.on('connection', (socket) => {
      // A queued client may reset before we get to it; without a listener that would crash us.
      socket.on('error', () => {});
      this.waiting.push(socket);
      this.handOver();
    });
  }

  /** The next client, or undefined once stop() was called. */
  accept(): Promise<Socket | undefined> {
    return new Promise((resolve) => {
      this.taker = resolve;
      this.handOver();
    });
  }

  /** Stops handing out clients; those never served are dropped (used on shutdown). */
  stop(): void {
    this.closed = true;
    for (const socket of this.waiting.splice(0)) socket.destroy();
    this.handOver();
  }

  private handOver(): void {
    if (!this.taker) return;
    let socket = this.waiting.shift();
    // Skip clients that gave up while they waited in the queue.
    while (socket?.destroyed) socket = this.waiting.shift();
    if (!socket && !this.closed) return;
    const take = this.taker;
    this.taker = undefined;
    take(socket);
  }
}
