// What one request leaves behind: after each attempt, the backend's health and counters; at the
// end, the client's status counted and the access log line. The exchange says what happened;
// this keeps the times and writes it down.
import { statusClass } from './metrics.ts';
import { accessRecord, type AccessRecord } from './access-log.ts';
import type { RequestHead } from './http/parser.ts';
import type { Backend, Peers } from './peers.ts';
import type { ExchangeContext } from './exchange-context.ts';
import { terminationState, type Outcome } from './outcome.ts';

export class RequestRecord {
  /** When the request and the current attempt began (performance.now(), ms). */
  private readonly startedAt = performance.now();
  private attemptStart = 0;
  /** Each attempt, for the access log (only when there is one). */
  private readonly attempts: AccessRecord['upstreams'] | undefined;
  /** Backends this request has been sent to: a retry goes elsewhere. */
  private readonly tried = new Set<Backend>();
  /** The body bytes of our own answer, if we answered (an error response). */
  private ownBodyBytes: number | undefined;

  constructor(
    private readonly head: RequestHead,
    private readonly context: ExchangeContext,
  ) {
    if (context.accessLog) this.attempts = [];
  }

  /** The candidates this request has not tried yet. */
  untried(candidates: Backend[]): Backend[] {
    return candidates.filter((backend) => !this.tried.has(backend));
  }

  attemptStarted(backend: Backend): void {
    this.tried.add(backend);
    backend.active++;
    backend.metrics.requests++;
    this.attemptStart = performance.now();
  }

  /**
   * The attempt is over. outcome: 'success', 'neutral' (nobody's fault) or the failure's reason;
   * status: the backend's, if it answered; timedOut: the failure was a timeout (504, else 502).
   */
  attemptEnded(backend: Backend, peers: Peers, outcome: string, status: number | undefined, timedOut = false): void {
    const now = performance.now();
    backend.active--;
    if (outcome === 'success') {
      peers.succeeded(backend);
      backend.metrics.observe(now - this.attemptStart, now);
      if (status !== undefined) backend.metrics.responses[statusClass(status)]!++;
    } else if (outcome !== 'neutral') {
      peers.failed(backend, outcome);
      backend.metrics.failures++;
    }
    const upstreamStatus = outcome === 'success' && status !== undefined ? status : timedOut ? 504 : 502;
    this.attempts?.push({ address: backend.hostPort, status: upstreamStatus, seconds: (now - this.attemptStart) / 1000 });
  }

  /** We answer for ourselves (502, 503, 504, 408...). */
  answered(bodyBytes: number): void {
    this.ownBodyBytes = bodyBytes;
  }

  /** The exchange is over: its status (499 if nobody answered), the body bytes sent, and the termination state. */
  finished(clientIp: string, outcome: Outcome, relayedBodyBytes: number): void {
    const status = outcome.status ?? 499;
    this.context.onResponse(status);
    const seconds = (performance.now() - this.startedAt) / 1000;
    const bytes = this.ownBodyBytes ?? relayedBodyBytes;
    this.context.accessLog?.write(accessRecord(clientIp, this.head, status, bytes, this.attempts!, seconds, terminationState(outcome)));
  }
}
