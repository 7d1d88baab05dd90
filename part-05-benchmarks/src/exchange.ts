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
    this.attempt(false);
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
    if (this.phase === 'exchanging' && this.request.phase !== 'forwarded') this.clientFault(new HttpError(400, CUT_SHORT));
  }

  /** The client went away (a reset, or a write that failed) before the response's last byte: nginx's 499. */
  abort(): void {
    if (this.phase !== 'done' && this.link) this.releaseBackend('destroy', 'neutral');
    this.end(true);
  }

  private attempt(sameBackend: boolean): void {
    const { upstream, context } = this.o;
    const backend = sameBackend ? this.link!.conn.backend : upstream.strategy.pick(this.record.untried(upstream.pool.available()));
    if (!backend) return this.respondError(503, `no healthy backend in upstream "${upstream.name}"`);
    this.record.attemptStarted(backend);
    this.phase = 'connecting';
    this.link = new BackendLink(context.connections, backend, sameBackend, context.config.connectTimeoutMs, this);
    if (this.link.connected) this.backendConnected(); // a pooled connection is up already
  }

  /** The connection is up (LinkEvents): write the head, then the body as it comes. */
  backendConnected(): void {
    const { socket, backend } = this.link!.conn;
    const { client, head, upgrade } = this.o;
    this.phase = 'exchanging';
    this.link!.conn.requests++;
    socket.write(backendRequestHead(head, client.remoteAddress ?? '', this.request.framing, upgrade, backend.hostPort));
    if (this.request.phase === 'forwarded') return this.backendClock.arm(); // bodiless: the backend's turn now
    // One piece: if the body ends inside it, what follows is handed back whole.
    const held = this.request.startStreaming();
    if (held) this.forwardBody(held);
    if (this.phase !== 'exchanging' || this.request.isForwarded()) return; // that piece ended the body, or the exchange
    if (this.clientFinished) return this.clientFault(new HttpError(400, CUT_SHORT));
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
      return this.clientFault(err);
    }
    this.o.context.onBuffered(backend.writableLength);
    if (!result.ok) {
      this.o.client.pause(); // the backend reads slower than the client sends: its clock runs
      this.backendClock.arm();
    }
    if (result.rest === undefined) return;
    this.requestComplete(result.rest);
    this.backendClock.arm(); // now the backend's clock starts (unless it has answered already)
    if (this.response.phase === 'complete') this.complete();
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
    else this.clientFault(new HttpError(408, `request body stalled for ${clock.ms} ms`));
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
    if (this.phase === 'exchanging' && this.response.phase !== 'complete') {
      this.backendFailed('reset', 'backend closed the connection before the response was complete');
    }
  }

  // --- Events of the response relay (RelayEvents) ---

  keepAlive(): boolean {
    return this.o.hooks.keepAlive() && this.request.phase === 'forwarded';
  }

  clientFull(): void {
    this.link!.conn.socket.pause(); // the client reads slower than the backend sends: not the backend's delay
    this.backendClock.stop();
  }

  private responseComplete(): void {
    if (this.request.phase === 'forwarded') return this.complete();
    // The backend answered before the request body was over (a 413, say). The connection can
    // no longer be trusted to be in step: close both sides once the response is out.
    this.releaseBackend('destroy', 'success');
    this.end();
  }

  /** The one path for a backend that let us down (LinkEvents): account, then retry, answer or cut. */
  backendFailed(kind: Failure, reason: string): void {
    if (this.phase === 'done') return;
    const { head, client, context, upstream } = this.o;
    const { conn } = this.link!;
    // A reused connection that died before answering is the stale-socket race, not a sick backend.
    const stale = conn.reused && !this.response.clientWritten && !this.response.partialHead && kind === 'reset';
    const requestSent = this.phase === 'exchanging';
    this.releaseBackend('destroy', stale || kind === 'local' ? 'neutral' : reason, kind === 'timeout');
    const step = nextStep({
      kind,
      stale,
      requestSent,
      clientWritten: this.response.clientWritten,
      staleRetried: this.staleRetried,
      bodySent: this.request.started,
      method: head.method,
      anotherBackend: this.record.untried(upstream.pool.available()).length > 0,
    });
    if (step.do === 'retry') {
      this.staleRetried ||= step.sameBackend;
      return this.attempt(step.sameBackend);
    }
    if (step.do === 'cut') {
      context.log(`${head.method} ${head.target}: ${reason} after the response began; cutting the client`);
      client.destroy();
      return this.end();
    }
    if (kind === 'local') context.onLocalError(reason);
    this.respondError(step.status, reason, kind !== 'local');
  }

  /** The client broke the rules mid-body (too large, too slow, malformed, cut short): its fault, not the backend's. */
  private clientFault(err: HttpError): void {
    if (this.phase === 'done') return;
    if (this.link) this.releaseBackend('destroy', 'neutral');
    if (this.response.clientWritten) {
      this.o.client.destroy();
      return this.end();
    }
    this.respondError(err.status, err.message, true, false);
  }

  /** The one place the proxy answers for itself. */
  private respondError(status: number, detail: string, logIt = true, mayKeep = true): void {
    const { head, context } = this.o;
    if (logIt && !this.o.upstream.pool.quiet) context.log(`${status} for ${head.method} ${head.target}: ${detail}`);
    this.response.keepClient = mayKeep && this.keepAlive();
    this.record.answered(status, head.method === 'HEAD' ? 0 : errorBody(status, detail).length);
    this.response.write(errorResponse(status, detail, this.response.keepClient, head.method === 'HEAD'));
    this.end();
  }

  /** Both directions are over: give the backend connection back if it is still in step. */
  private complete(): void {
    if (this.phase === 'done') return;
    this.releaseBackend(this.response.backendReusable ? 'keep' : 'destroy', 'success');
    this.end();
  }

  /**
   * The one release path for the backend connection (nginx's free(peer, state)): detach our
   * listeners, count the request as done, record the outcome, then pool or destroy the socket.
   * outcome: 'success', 'neutral' (nobody's fault), or the failure's reason.
   */
  private releaseBackend(socket: 'keep' | 'destroy', outcome: string, timedOut = false): void {
    const { conn } = this.link!;
    this.backendClock.stop();
    this.link!.detach();
    this.record.attemptEnded(conn.backend, this.o.upstream.pool, outcome, this.response.head?.status, timedOut);
    if (socket === 'keep') this.o.context.connections.release(conn);
    else if (socket === 'destroy') conn.socket.destroy();
  }

  /** 101 Switching Protocols: from now on the two sockets are a plain byte tunnel (part 2's pump). */
  switchProtocols(head: ResponseHead, rest: Buffer): void {
    const { client, hooks, context, upgrade } = this.o;
    const { conn } = this.link!;
    if (upgrade === undefined) return this.backendFailed('invalid', 'backend switched protocols unasked');
    if (this.request.phase !== 'forwarded') return this.backendFailed('invalid', 'backend switched protocols mid-body: the tunnel would carry the rest');
    this.backendClock.stop();
    this.clientClock.stop();
    this.link!.detach();
    conn.handOver();
    this.record.attemptEnded(conn.backend, this.o.upstream.pool, 'success', head.status);
    this.record.finished(client.remoteAddress ?? '-', head.status, 0);
    this.response.write(clientResponseHead(head, { kind: 'none' }, false));
    if (rest.length > 0) this.response.write(rest);
    const early = hooks.takeClient();
    if (early.length > 0) conn.socket.write(early);
    this.phase = 'tunnel';
    tunnel(client, conn.socket, { onBuffered: context.onBuffered, idleTimeoutMs: context.config.tunnelIdleTimeoutMs });
    client.resume();
    conn.socket.resume();
    hooks.finished(false, true);
  }

  private end(clientGone = false): void {
    if (this.phase === 'done' || this.phase === 'tunnel') return;
    this.phase = 'done';
    this.backendClock.stop();
    this.clientClock.stop();
    this.record.finished(this.o.client.remoteAddress ?? '-', clientGone ? 499 : this.response.head?.status, this.response.bodyBytes);
    this.o.hooks.finished(this.response.keepClient);
  }
}

const CUT_SHORT = 'the client closed before its request body was complete';
