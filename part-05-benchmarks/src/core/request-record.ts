// What one request leaves behind: after each attempt, the backend's health and counters; at the
// end, the client's status counted and the access log line. The exchange says what happened;
// this keeps the times and writes it down.
import { accessRecord, type AccessRecord } from '../observe/access-log.ts';
import type { RequestHead } from '../http/parser.ts';
import type { Backend, Peers } from '../upstream/peers.ts';
import type { ExchangeContext } from './exchange-context.ts';
import { terminationState, type Outcome, type Verdict } from './outcome.ts';

export class RequestRecord {
  /** When the request and the current attempt began (performance.now(), ms). */
  private readonly startedAt = performance.now();
  private attemptStart = 0;
  /** Each attempt, for the access log (only when there is one). */
  private readonly attempts: AccessRecord['upstreams'] | undefined;
  /** Backends this request has been sent to: a retry goes elsewhere. */
  private readonly tried = new Set<Backend>();

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

  /** The attempt is over: what it says about the backend, and the backend's status if it answered. */
  attemptEnded(backend: Backend, peers: Peers, verdict: Verdict, status: number | undefined): void {
    const now = performance.now();
    backend.active--;
    if (verdict.is === 'served') {
      peers.succeeded(backend);
      backend.metrics.observe(now - this.attemptStart, now);
      if (status !== undefined) backend.metrics.responded(status);
    } else if (verdict.is === 'failed') {
      peers.failed(backend, verdict.reason);
      backend.metrics.failures++;
    }
    const timedOut = verdict.is === 'failed' && verdict.timedOut;
    const upstreamStatus = verdict.is === 'served' && status !== undefined ? status : timedOut ? 504 : 502;
    this.attempts?.push({ address: backend.hostPort, status: upstreamStatus, seconds: (now - this.attemptStart) / 1000 });
  }

  /** The exchange is over: its status (499 if nobody answered), the body bytes sent (relayed or ours), and the termination state. */
  finished(clientIp: string, outcome: Outcome, bodyBytes: number): void {
    const status = outcome.status ?? 499;
    this.context.counters.responded(status);
    const seconds = (performance.now() - this.startedAt) / 1000;
    this.context.accessLog?.write(accessRecord(clientIp, this.head, status, bodyBytes, this.attempts ?? [], seconds, terminationState(outcome)));
  }
}

/** A request refused before any exchange began: counted and logged like any other ending, from its typed outcome. */
export function recordRefusal(
  context: ExchangeContext,
  clientIp: string,
  outcome: Outcome & { status: number },
  bodyBytes: number,
  head?: RequestHead,
  requestLine?: string,
): void {
  context.counters.responded(outcome.status);
  context.accessLog?.write(accessRecord(clientIp, head, outcome.status, bodyBytes, [], 0, terminationState(outcome), requestLine));
}
