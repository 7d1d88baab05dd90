// What the proxy counts for stats(), the status page and /metrics: one object that the request
// core is handed, so the context carries no closures. It outlives reloads.

export class Counters {
  /** Requests read from clients since start. */
  requests = 0;
  /** Most bytes ever queued in user space on one socket: what backpressure keeps small. */
  peakBufferedBytes = 0;
  /** Responses sent to clients, by status class, 1xx to 5xx. */
  readonly responses = [0, 0, 0, 0, 0];
  /** TCP connections opened to backends since start (the pool keeps this low). */
  backendConnectionsOpened = 0;
  /** Client connections served, and closed at once past the descriptor limit (stub_status' handled and dropped). */
  handled = 0;
  dropped = 0;

  /** Bytes queued in user space on a socket we just wrote to. */
  buffered(bytes: number): void {
    if (bytes > this.peakBufferedBytes) this.peakBufferedBytes = bytes;
  }

  /** A response went to a client with this status. */
  responded(status: number): void {
    const at = statusClass(status);
    this.responses[at] = (this.responses[at] ?? 0) + 1;
  }
}

/** Index of a status code's class: 0 for 1xx ... 4 for 5xx. */
export function statusClass(status: number): number {
  return Math.min(Math.max(Math.floor(status / 100), 1), 5) - 1;
}
