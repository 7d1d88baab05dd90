// One request and its response, as one flow read top to bottom: choose a backend, connect, send,
// await the response head, relay the body, finish. The phase says where the exchange is and
// carries what exists there. Retries happen here, and only while they are safe.
import { joinTunnel, upgradeRefusal } from './upgrade.ts';
import { backendRequestHead, clientResponseHead } from '../http/headers.ts';
import { responsePlan } from '../http/persistence.ts';
import type { ResponseHead } from '../http/parser.ts';
import { HttpError } from '../http/errors.ts';
import { RequestBody } from './request-body.ts';
import { ResponseRelay, type Relayed } from './response-relay.ts';
import { closeFailure, nextStep, type Failure } from './retry-policy.ts';
import { Deadline, type DeadlineOwner } from './deadlines.ts';
import type { BackendConnection, BackendUser } from '../upstream/connection-pool.ts';
import { RequestRecord } from './request-record.ts';
import type { Backend } from '../upstream/peers.ts';
import type { ExchangeOptions } from './exchange-context.ts';
import { NEUTRAL, SERVED, type EndedBy, type Outcome, type Verdict } from './outcome.ts';
import { endedIn, outcomeIn, backendMaySpeak, type ExchangePhase, type Relaying } from './exchange-phase.ts';

export type { ExchangeContext, ExchangeHooks, Upstream } from './exchange-context.ts';

/** The handler of its backend connection's events and of its clocks: methods on one object, so a request makes no listener functions. */
export class Exchange implements BackendUser, DeadlineOwner {
  phase: ExchangePhase = { name: 'choosing' };
  private readonly request: RequestBody;
  private readonly response: ResponseRelay;
  private staleRetried = false;
  /** Health, counters and the access log line: what this request leaves behind. */
  private readonly record: RequestRecord;
  /** Whether the client connection may carry another request (given, or withdrawn by closeAfter()), and whether it will (decided as our head goes out). */
  private mayKeepClient: boolean;
  private keepClient = false;
  /** Time allowed between signs of progress: the backend's reads or drains (proxy_read/send_timeout), the client's body (client_body_timeout). */
  private readonly backendClock: Deadline;
  private readonly clientClock: Deadline;

  constructor(private readonly o: ExchangeOptions) {
    this.backendClock = new Deadline(o.context.config.responseTimeoutMs, this);
    this.clientClock = new Deadline(o.context.config.clientBodyTimeoutMs, this);
    this.record = new RequestRecord(o.head, o.context);
    this.request = new RequestBody(o.framing, o.context.config.clientMaxBodySize);
    this.response = new ResponseRelay(o.client, o.context.config.limits, o.context.counters);
    this.mayKeepClient = o.keepClient;
  }

  // --- What the client connection tells the exchange ---

  /** Starts with the body bytes that came after the request head (none for a bodiless request). */
  start(initial: Buffer): void {
    if (initial.length > 0) this.request.hold(initial);
    this.attempt(undefined);
  }

  /** The client's next bytes belong to this request's body (else to the next request). */
  get readsBody(): boolean {
    return !this.request.complete;
  }

  /** Body bytes from the client. */
  clientBytes(chunk: Buffer): void {
    const p = this.phase;
    if (p.name === 'sending' || p.name === 'relaying') return this.forwardBody(p.conn, chunk);
    if (p.name !== 'connecting') return; // answered early; the rest of the body is not needed
    this.request.hold(chunk);
    this.o.client.pause(); // one chunk is enough to hold while we wait for a backend
  }

  /** The client sent FIN (half-close) before its body was complete. It may still read our answer. */
  clientEnded(): void {
    const p = this.phase;
    if (p.name === 'sending' || p.name === 'relaying') return this.clientFault(new HttpError(400, CUT_SHORT), 'client');
    // connecting: the held bytes decide once they are forwarded (see connected()).
  }

  /** The client went away (a reset, or a write that failed) before the response's last byte: nginx's 499. */
  abort(): void {
    this.finish(outcomeIn(this.phase, 'client', 499, 'the client went away'));
  }

  /** Shutdown or reload: the client connection closes after this response. */
  closeAfter(): void {
    this.mayKeepClient = false;
  }

  /** The client's buffer has room again (its connection passes 'drain' on). */
  clientDrained(): void {
    if (!backendMaySpeak(this.phase)) return;
    this.backendClock.arm();
    this.phase.conn.socket.resume();
  }

  /** One of the two clocks ran out. */
  expired(clock: Deadline): void {
    if (clock === this.backendClock) this.backendFailed('timeout', `backend silent for ${clock.ms} ms: timed out`);
    else this.clientFault(new HttpError(408, `request body stalled for ${clock.ms} ms`), 'client');
  }

  // --- The flow ---

  /** Picks a backend (or `again`, on a fresh connection: the stale-socket retry) and connects; 503 if none is left. */
  private attempt(again: Backend | undefined): void {
    const { upstream, context } = this.o;
    const backend = again ?? upstream.strategy.pick(this.record.untried(upstream.peers.available()));
    if (!backend) return this.respondError(outcomeIn(this.phase, 'backend', 503, `no healthy backend in upstream "${upstream.name}"`));
    this.record.attemptStarted(backend);
    const idle = again ? undefined : context.connections.takeIdle(backend);
    const conn = idle ?? context.connections.open(backend);
    this.phase = { name: 'connecting', conn };
    conn.user = this;
    if (idle) return this.connected(conn); // a pooled connection is up already
    conn.waitAtMost(context.config.connectTimeoutMs);
  }

  /** The connection is up: write the head, then the body as it comes. */
  private connected(conn: BackendConnection): void {
    const { client, head, upgrade } = this.o;
    conn.requests++;
    conn.waitAtMost(0); // the connect timeout is over
    conn.socket.write(backendRequestHead(head, client.remoteAddress ?? '', this.request.framing, upgrade, conn.backend.hostPort, this.o.context.scheme), 'latin1');
    if (this.request.complete) {
      this.phase = { name: 'awaiting', conn }; // bodiless: the backend's turn now
      return this.backendClock.arm();
    }
    this.phase = { name: 'sending', conn };
    // One piece: if the body ends inside it, what follows is handed back whole.
    const held = this.request.takeHeld();
    if (held) this.forwardBody(conn, held);
    if (this.phase.name !== 'sending') return; // that piece ended the body, or the exchange
    if (this.o.client.readableEnded) return this.clientFault(new HttpError(400, CUT_SHORT), 'client');
    this.clientClock.arm();
    client.resume();
  }

  private forwardBody(conn: BackendConnection, chunk: Buffer): void {
    this.clientClock.touch();
    const result = this.request.forward(chunk, conn.socket);
    if (result instanceof HttpError) return this.clientFault(result, 'proxy'); // malformed or too large: refused by us
    this.o.context.counters.buffered(conn.socket.writableLength);
    if (!result.ok) {
      this.o.client.pause(); // the backend reads slower than the client sends: its clock runs
      this.backendClock.arm();
    }
    if (result.rest === undefined) return;
    this.clientClock.stop();
    if (this.phase.name === 'relaying') this.phase.requestSent = true;
    else this.phase = { name: 'awaiting', conn };
    this.o.hooks.bodyRead(result.rest);
    this.backendClock.arm(); // now the backend's clock starts (unless it has answered already)
  }

  /** The final response head (or a 101) is in: decide once whether each connection persists, then relay. */
  private headReceived(conn: BackendConnection, head: ResponseHead, rest: Buffer): void {
    const requestSent = this.phase.name === 'awaiting';
    if (head.status === 101) return this.switchProtocols(conn, head, rest, requestSent);
    const plan = responsePlan(this.o.head, head);
    this.keepClient = this.mayKeepClient && requestSent && plan.toClient.kind !== 'close';
    const relaying: Relaying = { name: 'relaying', conn, head, requestSent, backendPersists: plan.backendPersists };
    this.phase = relaying;
    this.relayed(relaying, this.response.startBody(head, plan.fromBackend, plan.toClient, this.keepClient, rest));
  }

  private relayed(phase: Relaying, relayed: Relayed): void {
    if (relayed === 'complete') return this.finish({ by: 'nobody', in: 'body', status: phase.head.status, reason: '', timedOut: false });
    if (relayed === 'client-full') {
      phase.conn.socket.pause(); // the client reads slower than the backend sends: not the backend's delay
      this.backendClock.stop();
    }
  }

  /** 101 Switching Protocols: from now on the two sockets are a plain byte tunnel (part 2's pump). */
  private switchProtocols(conn: BackendConnection, head: ResponseHead, rest: Buffer, requestSent: boolean): void {
    const refusal = upgradeRefusal(this.o.upgrade, requestSent);
    if (refusal !== undefined) return this.backendFailed('invalid', refusal);
    this.response.write(clientResponseHead(head, { kind: 'none' }, false));
    if (rest.length > 0) this.response.write(rest);
    const early = this.o.hooks.handOver();
    this.finish({ by: 'nobody', in: 'tunnel', status: head.status, reason: '', timedOut: false }); // hands the socket over
    joinTunnel(this.o.client, conn.socket, early, this.o.context);
  }

  // --- The backend connection's events (BackendUser): its socket's listeners call these directly ---

  backendConnected(): void {
    if (this.phase.name === 'connecting') this.connected(this.phase.conn);
  }

  backendTimeout(): void {
    this.backendFailed('timeout', `connect timed out after ${this.o.context.config.connectTimeoutMs} ms`);
  }

  backendClosed(error: NodeJS.ErrnoException | undefined): void {
    if ('conn' in this.phase) this.backendFailed(...closeFailure(error, this.phase.name !== 'connecting'));
  }

  backendData(chunk: Buffer): void {
    const p = this.phase;
    if (!backendMaySpeak(p)) return;
    this.backendClock.touch();
    try {
      if (p.name === 'relaying') return this.relayed(p, this.response.relayBody(chunk));
      const read = this.response.readHead(chunk);
      if (read) this.headReceived(p.conn, read.head, read.rest);
    } catch (err) {
      if (!(err instanceof HttpError)) throw err;
      this.backendFailed('invalid', `invalid response: ${err.message}`);
    }
  }

  backendEnd(): void {
    const p = this.phase;
    if (p.name === 'relaying' && this.response.backendEnded()) return this.relayed(p, 'complete');
    if (backendMaySpeak(p)) this.backendFailed('reset', 'backend closed the connection before the response was complete');
  }

  backendDrain(): void {
    if (this.request.complete) return;
    this.backendClock.stop();
    this.o.client.resume();
  }

  // --- Endings: every one comes to finish() ---

  /** The one path for a backend that let us down: account, then retry, answer or cut. */
  private backendFailed(kind: Failure, reason: string): void {
    const p = this.phase;
    if (!('conn' in p)) return;
    const { head, client, context, upstream } = this.o;
    // A reused connection that died before answering is the stale-socket race, not a sick backend.
    const stale = p.conn.reused && !this.response.clientWritten && !this.response.partialHead && kind === 'reset';
    const requestSent = p.name !== 'connecting';
    this.releaseBackend(p.conn, 'destroy', stale || kind === 'local' ? NEUTRAL : { is: 'failed', reason, timedOut: kind === 'timeout' });
    const anotherBackend = this.record.untried(upstream.peers.available()).length > 0;
    const [clientWritten, staleRetried, bodySent, method] = [this.response.clientWritten, this.staleRetried, this.request.started, head.method];
    const step = nextStep({ kind, stale, requestSent, clientWritten, staleRetried, bodySent, method, anotherBackend });
    if (step.do === 'retry') {
      this.staleRetried ||= step.sameBackend;
      return this.attempt(step.sameBackend ? p.conn.backend : undefined);
    }
    const by: EndedBy = kind === 'local' ? 'resource' : kind === 'invalid' ? 'proxy' : 'backend';
    const ending = { by, in: endedIn(p), reason, timedOut: kind === 'timeout' };
    if (step.do === 'cut') {
      context.log(`${head.method} ${head.target}: ${reason} after the response began; cutting the client`);
      client.destroy();
      return this.finish({ ...ending, status: p.name === 'relaying' ? p.head.status : undefined });
    }
    if (kind === 'local') context.localTrouble.event(reason);
    this.respondError({ ...ending, status: step.status });
  }

  /** The client broke the rules mid-body: too large or malformed (by: proxy), too slow or cut short (by: client). */
  private clientFault(err: HttpError, by: EndedBy): void {
    const p = this.phase;
    if (p.name === 'done' || p.name === 'tunnel') return;
    const outcome = { ...outcomeIn(this.phase, by, err.status, err.message), timedOut: err.status === 408 };
    if (!this.response.clientWritten) return this.respondError(outcome);
    this.o.client.destroy(); // a second status line would corrupt what the client already has
    this.finish({ ...outcome, status: p.name === 'relaying' ? p.head.status : undefined });
  }

  /** The one place the proxy answers for itself, then finish(). (Our own shortage, and every backend down, log per burst.) */
  private respondError(outcome: Outcome & { status: number }): void {
    const { head, context } = this.o;
    const { status, reason } = outcome;
    if (outcome.by !== 'resource' && !this.o.upstream.peers.quiet) context.log(`${status} for ${head.method} ${head.target}: ${reason}`);
    this.keepClient = this.mayKeepClient && this.request.complete;
    this.response.answer(status, reason, this.keepClient, head.method === 'HEAD');
    this.finish(outcome);
  }


  /** The one way out (nginx's ngx_http_upstream_finalize_request): every ending comes here once. */
  private finish(outcome: Outcome): void {
    const p = this.phase;
    if (p.name === 'done' || p.name === 'tunnel') return;
    const tunnelled = outcome.in === 'tunnel';
    if ('conn' in p) {
      const inStep = outcome.by === 'nobody' && p.name === 'relaying' && p.requestSent && p.backendPersists && !this.response.outOfStep;
      this.releaseBackend(p.conn, tunnelled ? 'hand-over' : inStep ? 'keep' : 'destroy', outcome.by === 'nobody' ? SERVED : NEUTRAL, outcome.status);
    }
    this.phase = tunnelled ? { name: 'tunnel' } : { name: 'done' };
    this.backendClock.stop();
    this.clientClock.stop();
    this.record.finished(this.o.client.remoteAddress ?? '-', outcome, this.response.bodyBytes);
    this.o.hooks.finished(tunnelled ? 'tunnel' : this.keepClient ? 'keep' : 'close');
  }

  /** The one release path for a backend connection (nginx's free(peer, state)): stop hearing it, record the verdict, then pool, destroy or hand over the socket. */
  private releaseBackend(conn: BackendConnection, socket: 'keep' | 'destroy' | 'hand-over', verdict: Verdict, status?: number): void {
    this.phase = { name: 'choosing' }; // released once: no later phase holds the connection
    this.backendClock.stop();
    conn.user = undefined;
    conn.waitAtMost(0);
    this.record.attemptEnded(conn.backend, this.o.upstream.peers, verdict, status);
    if (socket === 'keep') this.o.context.connections.release(conn);
    else if (socket === 'destroy') conn.socket.destroy();
    else conn.handOver();
  }
}

const CUT_SHORT = 'the client closed before its request body was complete';
