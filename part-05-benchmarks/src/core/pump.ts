// The byte pump: joins two connected sockets, with backpressure, half-close and abort
// propagation. Each socket's events drive a tiny state machine, like an epoll handler in C.
import type { Socket } from 'node:net';

export interface TunnelEvents {
  /** Called after every write with the bytes queued in user space on the receiving side. */
  onBuffered?: (bytes: number) => void;
  /** Close both sides after this long with no byte either way (0 or absent: never). */
  idleTimeoutMs?: number;
}

/** Pumps bytes both ways between a and b until both directions have ended, or one side breaks. */
export function tunnel(a: Socket, b: Socket, events: TunnelEvents = {}): void {
  pumpOneWay(a, b, events);
  pumpOneWay(b, a, events);
  // Every byte either way is read from or written to a, so a's idle timer sees both directions.
  if (events.idleTimeoutMs) {
    a.setTimeout(events.idleTimeoutMs, () => {
      a.destroy();
      b.destroy();
    });
  }
  for (const socket of [a, b]) {
    // The error itself is reported through 'close' (hadError); without a listener it would crash us.
    socket.on('error', () => {});
    socket.once('close', () => {
      // Closed cleanly in both directions: the partner finishes on its own.
      if (socket.readableEnded && socket.writableFinished) return;
      // Cut short (reset, error, destroy): take the partner down too.
      a.destroy();
      b.destroy();
    });
  }
}

function pumpOneWay(from: Socket, to: Socket, events: TunnelEvents): void {
  from.on('data', (chunk: Buffer) => {
    // false = the receiver's buffer is over its high-water mark: stop reading until it drains.
    if (!to.write(chunk)) from.pause();
    events.onBuffered?.(to.writableLength);
  });
  to.on('drain', () => from.resume());
  // Half-close: the sender is done (FIN), so we are done sending to the receiver.
  from.on('end', () => to.end());
}
