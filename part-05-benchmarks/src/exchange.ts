// One request and its response: choose a backend, send the request, stream the response back.
// Retries happen here, and only while they are safe. The request side lives in request-body.ts,
// the response side in response-relay.ts; this file decides what happens when something fails.
import { tunnel } from './pump.ts';
import { backendRequestHead, clientResponseHead } from './http/headers.ts';
import type { ResponseHead } from './http/parser.ts';
import { errorBody, errorResponse, HttpError } from './http/errors.ts';
import { RequestBody } from './request-body.ts';
import { ResponseRelay, type RelayEvents } from './response-relay.ts';
import { nextStep, type Failure } from './retry-policy.ts';
import { Deadline, type DeadlineOwner } from './deadlines.ts';
import { BackendLink, type LinkEvents } from './backend-link.ts';
import { RequestRecord } from './request-record.ts';
import type { ExchangeOptions } from './exchange-context.ts';
import type { Backend } from './pool.ts';
import type { EndedBy, EndedIn, Outcome } from './outcome.ts';

export type { ExchangeContext, ExchangeHooks, Upstream } from './exchange-context.ts';

/**
 * connecting: a new backend connection is being opened (connectTimeoutMs runs).
 * exchanging: connected; the request goes out and the response comes back.
 * tunnel: after 101 Switching Protocols, the byte pump owns both sockets.
 * done: answered, failed or cut; nothing more happens.
 */
export type ExchangePhase = 'connecting' | 'exchanging' | 'tunnel' | 'done';

/**
 * The exchange is itself the handler of its backend link's and its relay's events: methods on
 * one object, so a request creates no listener functions (see BackendConnection).
 */
export class Exchange implements LinkEvents, RelayEvents, DeadlineOwner {
  phase: ExchangePhase = 'connecting';
  readonly request: RequestBody;
  private readonly response: ResponseRelay;
  private link: BackendLink | undefined;
  /** The client sent FIN; what it sent before may still complete the request. */
  private clientFinished = false;
  private staleRetried = false;
  /** Health, counters and the access log line: what this request leaves behind. */
  private readonly record: RequestRecord;
  /** The backend's clock: time between two of its reads or drains (proxy_read/send_timeout). */
  private readonly backendClock: Deadline;
  /** The client's clock: time between two reads of the request body (client_body_timeout). */
  private readonly clientClock: Deadline;

  constructor(private readonly o: ExchangeOptions) {
    this.backendClock = new Deadline(o.context.config.responseTimeoutMs, this);
    this.clientClock = new Deadline(o.context.config.clientBodyTimeoutMs, this);
    this.request = new RequestBody(o.framing, o.context.config.clientMaxBodySize);
    this.response = new ResponseRelay(o.client, o.head, o.context.config.limits, this, o.context.onBuffered);
    this.record = new RequestRecord(o.head, o.context);
  }

  /** Starts with the bytes that came after the request head. */
  start(initial: Buffer): void {
    if (this.request.empty) this.requestComplete(initial);
    else if (initial.length > 0) this.request.hold(initial);
    this.attempt(undefined);
  }

  /** Body bytes from the client. */
  clientBytes(chunk: Buffer): void {
    if (this.phase === 'done') return; // answered early; the rest of the body is not needed
    if (this.phase === 'exchanging') return this.forwardBody(chunk);
    this.request.hold(chunk);
    this.o.client.pause(); // one chunk is enough to hold while we wait for a backend
  }

  /** The client has sent FIN (half-close). It may still read our answer. */
  clientEnded(): void {
    this.clientFinished = true;
    // Not yet connected: the held bytes decide once they are forwarded (see backendConnected()).
    if (this.phase === 'exchanging' && this.request.phase !== 'forwarded') this.clientFault(new HttpError(400, CUT_SHORT), 'client');
  }

  /** The client went away (a reset, or a write that failed) before the response's last byte: nginx's 499. */
  abort(): void {
    this.finish({ by: 'client', in: this.where(), status: 499, reason: 'the client went away', timedOut: false });
  }

  /** Sends the request to a backend the strategy picks, or again to `again` on a fresh connection (the stale-socket retry). */
  private attempt(again: Backend | undefined): void {
    const { upstream, context } = this.o;
    const backend = again ?? upstream.strategy.pick(this.record.untried(upstream.pool.available()));
    if (!backend) return this.respondError(this.ending('backend', 503, `no healthy backend in upstream "${upstream.name}"`));
    this.record.attemptStarted(backend);
    this.phase = 'connecting';
    this.link = new BackendLink(context.connections, backend, again !== undefined, context.config.connectTimeoutMs, this);
    if (this.link.connected) this.backendConnected(); // a pooled connection is up already
  }

  /** The connection is up (LinkEvents): write the head, then the body as it comes. */
  backendConnected(): void {
    const { socket, backend } = this.link!.conn;
    const { client, head, upgrade } = this.o;
    this.phase = 'exchanging';
    this.link!.conn.requests++;
    socket.write(backendRequestHead(head, client.remoteAddress ?? '', this.request.framing, upgrade, backend.hostPort, this.o.context.scheme));
    if (this.request.phase === 'forwarded') return this.backendClock.arm(); // bodiless: the backend's turn now
    // One piece: if the body ends inside it, what follows is handed back whole.
    const held = this.request.startStreaming();
    if (held) this.forwardBody(held);
    if (this.phase !== 'exchanging' || this.request.isForwarded()) return; // that piece ended the body, or the exchange
    if (this.clientFinished) return this.clientFault(new HttpError(400, CUT_SHORT), 'client');
    this.clientClock.arm();
    client.resume();
  }

  private forwardBody(chunk: Buffer): void {
    if (this.request.phase === 'forwarded') return; // bytes after the body belong to the next request (already handed back)
    const backend = this.link!.conn.socket;
    this.clientClock.touch();
    let result;
    try {
      result = this.request.forward(chunk, backend);
    } catch (err) {
      if (!(err instanceof HttpError)) throw err;
      return this.clientFault(err, 'proxy'); // malformed or too large: refused by us
    }
    this.o.context.onBuffered(backend.writableLength);
    if (!result.ok) {
      this.o.client.pause(); // the backend reads slower than the client sends: its clock runs
      this.backendClock.arm();
    }
    if (result.rest === undefined) return;
    this.requestComplete(result.rest);
    this.backendClock.arm(); // now the backend's clock starts (unless it has answered already)
    if (this.response.phase === 'complete') this.responseComplete();
  }

  private requestComplete(rest: Buffer): void {
    this.request.phase = 'forwarded';
    this.clientClock.stop();
    this.o.hooks.requestForwarded(rest);
  }

  /** The client's buffer has room again (its connection passes 'drain' on). */
  clientDrained(): void {
    if (this.phase !== 'exchanging') return;
    this.backendClock.arm();
    this.link!.conn.socket.resume();
  }

  /** One of the two clocks ran out. */
  expired(clock: Deadline): void {
    if (clock === this.backendClock) this.backendFailed('timeout', `backend silent for ${clock.ms} ms: timed out`);
    else this.clientFault(new HttpError(408, `request body stalled for ${clock.ms} ms`), 'client');
  }

  /** The backend's buffer has room again (LinkEvents, as are backendData and backendEnd). */
  backendDrain(): void {
    if (this.request.phase === 'forwarded') return;
    this.backendClock.stop();
    this.o.client.resume();
  }

  backendData(chunk: Buffer): void {
    this.backendClock.touch();
    try {
      this.response.push(chunk);
    } catch (err) {
      if (!(err instanceof HttpError)) throw err;
      return this.backendFailed('invalid', `invalid response: ${err.message}`);
    }
    if (this.response.phase === 'complete' && this.phase === 'exchanging') this.responseComplete();
  }

  backendEnd(): void {
    if (this.response.backendEnded()) return this.responseComplete();
    const early = this.phase === 'exchanging' && this.response.phase !== 'complete';
    if (early) this.backendFailed('reset', 'backend closed the connection before the response was complete');
  }

  // --- Events of the response relay (RelayEvents) ---

  keepAlive(): boolean {
    return this.o.hooks.keepAlive() && this.request.phase === 'forwarded';
  }

  clientFull(): void {
    this.link!.conn.socket.pause(); // the client reads slower than the backend sends: not the backend's delay
    this.backendClock.stop();
  }

  /** The response is out. If it came before the request body was over (a 413, say), finish() closes both sides. */
  private responseComplete(): void {
    this.finish({ by: 'nobody', in: 'body', status: this.response.head?.status, reason: '', timedOut: false });
  }

  /** The one path for a backend that let us down (LinkEvents): account, then retry, answer or cut. */
  backendFailed(kind: Failure, reason: string): void {
    if (this.phase === 'done') return;
    const { head, client, context, upstream } = this.o;
    const { conn } = this.link!;
    const where = this.where();
    // A reused connection that died before answering is the stale-socket race, not a sick backend.
    const stale = conn.reused && !this.response.clientWritten && !this.response.partialHead && kind === 'reset';
    const requestSent = this.phase === 'exchanging';
    this.releaseBackend('destroy', stale || kind === 'local' ? 'neutral' : reason, kind === 'timeout');
    const [clientWritten, staleRetried, bodySent] = [this.response.clientWritten, this.staleRetried, this.request.started];
    const anotherBackend = this.record.untried(upstream.pool.available()).length > 0;
    const step = nextStep({ kind, stale, requestSent, clientWritten, staleRetried, bodySent, method: head.method, anotherBackend });
    if (step.do === 'retry') {
      this.staleRetried ||= step.sameBackend;
      return this.attempt(step.sameBackend ? conn.backend : undefined);
    }
    const by: EndedBy = kind === 'local' ? 'resource' : kind === 'invalid' ? 'proxy' : 'backend';
    const ending = { by, in: where, reason, timedOut: kind === 'timeout' };
    if (step.do === 'cut') {
      context.log(`${head.method} ${head.target}: ${reason} after the response began; cutting the client`);
      client.destroy();
      return this.finish({ ...ending, status: this.response.head?.status });
    }
    if (kind === 'local') context.onLocalError(reason);
    this.respondError({ ...ending, status: step.status });
  }

  /** The client broke the rules mid-body: too large or malformed (by: proxy), too slow or cut short (by: client). */
  private clientFault(err: HttpError, by: EndedBy): void {
    if (this.phase === 'done') return;
    const outcome = { ...this.ending(by, err.status, err.message), timedOut: err.status === 408 };
    if (!this.response.clientWritten) return this.respondError(outcome);
    this.o.client.destroy(); // a second status line would corrupt what the client already has
    this.finish({ ...outcome, status: this.response.head?.status });
  }

  /** The one place the proxy answers for itself, then finish(). (Our own shortage, and every backend down, log per burst.) */
  private respondError(outcome: Outcome & { status: number }): void {
    const { head, context } = this.o;
    const { status, reason } = outcome;
    if (outcome.by !== 'resource' && !this.o.upstream.pool.quiet) context.log(`${status} for ${head.method} ${head.target}: ${reason}`);
    this.response.keepClient = this.keepAlive();
    this.record.answered(head.method === 'HEAD' ? 0 : errorBody(status, reason).length);
    this.response.write(errorResponse(status, reason, this.response.keepClient, head.method === 'HEAD'));
    this.finish(outcome);
  }

  private ending(by: EndedBy, status: number, reason: string): Outcome & { status: number } {
    return { by, in: this.where(), status, reason, timedOut: false };
  }

  private where(): EndedIn {
    if (this.phase === 'connecting') return 'connect';
    if (this.response.phase !== 'head') return 'body';
    return this.request.phase === 'forwarded' ? 'head' : 'request';
  }

  /**
   * The one release path for a backend connection (nginx's free(peer, state)): detach, record the attempt
   * ('success', 'neutral': nobody's fault, or the failure's reason), then pool, destroy or hand over the socket.
   */
  private releaseBackend(socket: 'keep' | 'destroy' | 'hand-over', outcome: string, timedOut = false, status = this.response.head?.status): void {
    const link = this.link!;
    const { conn } = link;
    this.link = undefined; // released once
    this.backendClock.stop();
    link.detach();
    this.record.attemptEnded(conn.backend, this.o.upstream.pool, outcome, status, timedOut);
    if (socket === 'keep') this.o.context.connections.release(conn);
    else if (socket === 'destroy') conn.socket.destroy();
    else conn.handOver();
  }

  /** 101 Switching Protocols: from now on the two sockets are a plain byte tunnel (part 2's pump). */
  switchProtocols(head: ResponseHead, rest: Buffer): void {
    const { client, hooks, context, upgrade } = this.o;
    const { conn } = this.link!;
    if (upgrade === undefined) return this.backendFailed('invalid', 'backend switched protocols unasked');
    if (this.request.phase !== 'forwarded') return this.backendFailed('invalid', 'backend switched protocols mid-body: the tunnel would carry the rest');
    this.response.write(clientResponseHead(head, { kind: 'none' }, false));
    if (rest.length > 0) this.response.write(rest);
    const early = hooks.takeClient();
    this.finish({ by: 'nobody', in: 'tunnel', status: head.status, reason: '', timedOut: false }); // hands the socket over
    if (early.length > 0) conn.socket.write(early);
    tunnel(client, conn.socket, { onBuffered: context.onBuffered, idleTimeoutMs: context.config.tunnelIdleTimeoutMs });
    client.resume();
    conn.socket.resume();
  }

  /**
   * The one way out (nginx's ngx_http_upstream_finalize_request): every ending comes here once. The
   * backend connection is pooled (in step), handed to a tunnel, or closed; then the record; then the client.
   */
  private finish(outcome: Outcome): void {
    if (this.phase === 'done' || this.phase === 'tunnel') return;
    if (this.link) {
      const inStep = outcome.by === 'nobody' && outcome.in !== 'tunnel' && this.request.phase === 'forwarded' && this.response.backendReusable;
      const socket = outcome.in === 'tunnel' ? 'hand-over' : inStep ? 'keep' : 'destroy';
      this.releaseBackend(socket, outcome.by === 'nobody' ? 'success' : 'neutral', false, outcome.in === 'tunnel' ? outcome.status : undefined);
    }
    this.phase = outcome.in === 'tunnel' ? 'tunnel' : 'done';
    this.backendClock.stop();
    this.clientClock.stop();
    this.record.finished(this.o.client.remoteAddress ?? '-', outcome, this.response.bodyBytes);
    this.o.hooks.finished(outcome.in === 'tunnel' ? 'tunnel' : this.response.keepClient ? 'keep' : 'close');
  }
}

const CUT_SHORT = 'the client closed before its request body was complete';
