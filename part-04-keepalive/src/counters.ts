// What the proxy counts for stats(): one object that the request core is handed, so the context
// carries no closures.
export class Counters {
  /** Requests read from clients since start. */
  requests = 0;
  /** Most bytes ever queued in user space on one socket: what backpressure keeps small. */
  peakBufferedBytes = 0;

  /** Bytes queued in user space on a socket we just wrote to. */
  buffered(bytes: number): void {
    if (bytes > this.peakBufferedBytes) this.peakBufferedBytes = bytes;
  }
}
