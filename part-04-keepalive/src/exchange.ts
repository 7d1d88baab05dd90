// One request and its response: choose a backend, send the request, stream the response back.
// Retries happen here, and only while they are safe. The request side lives in request-body.ts,
// the response side in response-relay.ts; this file decides what happens when something fails.
import { tunnel } from './pump.ts';
import { backendRequestHead, clientResponseHead } from './http/headers.ts';
import type { ResponseHead } from './http/parser.ts';
import { errorResponse, HttpError } from './http/errors.ts';
import { RequestBody } from './request-body.ts';
import { ResponseRelay } from './response-relay.ts';
import { nextStep, type Failure } from './retry-policy.ts';
import { IdleTimer } from './idle-timer.ts';
import { BackendLink } from './backend-link.ts';
import type { Backend } from './pool.ts';
import type { ExchangeOptions } from './exchange-context.ts';

export type { ExchangeContext, ExchangeHooks, Upstream } from './exchange-context.ts';

/**
 * connecting: a new backend connection is being opened (connectTimeoutMs runs).
 * exchanging: connected; the request goes out and the response comes back.
 * tunnel: after 101 Switching Protocols, the byte pump owns both sockets.
 * done: answered, failed or cut; nothing more happens.
 */
export type ExchangePhase = 'connecting' | 'exchanging' | 'tunnel' | 'done';

export class Exchange {
  phase: ExchangePhase = 'connecting';
  readonly request: RequestBody;
  private readonly response: ResponseRelay;
  private readonly tried = new Set<Backend>();
  private link: BackendLink | undefined;
  /** The client sent FIN; what it sent before may still complete the request. */
  private clientFinished = false;
  private staleRetried = false;
  /** The backend's clock: time between two of its reads or drains (proxy_read/send_timeout). */
  private readonly backendClock: IdleTimer;
  /** The client's clock: time between two reads of the request body (client_body_timeout). */
  private readonly clientClock: IdleTimer;

  constructor(private readonly o: ExchangeOptions) {
    const { responseTimeoutMs, clientBodyTimeoutMs } = o.context.config;
    this.backendClock = new IdleTimer(responseTimeoutMs, () => this.fail('timeout', `backend silent for ${responseTimeoutMs} ms: timed out`));
    this.clientClock = new IdleTimer(clientBodyTimeoutMs, () => this.clientFault(new HttpError(408, `request body stalled for ${clientBodyTimeoutMs} ms`)));
    this.request = new RequestBody(o.framing, o.context.config.clientMaxBodySize);
    this.response = new ResponseRelay(o.client, o.head, o.context.config.limits, {
      switchProtocols: (head, rest) => this.switchProtocols(head, rest),
      keepAlive: () => o.hooks.keepAlive() && this.request.phase === 'forwarded',
      clientFull: () => {
        this.link!.conn.socket.pause(); // the client reads slower than the backend sends: not the backend's delay
        this.backendClock.stop();
      },
      buffered: o.context.onBuffered,
    });
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
    // Not yet connected: the held bytes decide once they are forwarded (see send()).
    if (this.phase === 'exchanging' && this.request.phase !== 'forwarded') this.clientFault(new HttpError(400, CUT_SHORT));
  }

  /** The client went away: drop the backend connection, it is mid-exchange. */
  abort(): void {
    if (this.phase !== 'done' && this.link) this.releaseBackend('destroy', 'neutral');
    this.end();
  }

  private attempt(sameBackend: boolean): void {
    const { upstream, context } = this.o;
    const backend = sameBackend ? this.link!.conn.backend : upstream.strategy.pick(upstream.pool.available().filter((b) => !this.tried.has(b)));
    if (!backend) return this.respondError(503, `no healthy backend in upstream "${upstream.name}"`);
    this.tried.add(backend);
    backend.active++;
    this.phase = 'connecting';
    this.link = new BackendLink(context.connections, backend, sameBackend, context.config.connectTimeoutMs, {
      connected: () => this.send(),
      data: this.onBackendData,
      end: this.onBackendEnd,
      drain: this.onBackendDrain,
      failed: (kind, reason) => this.fail(kind, reason),
    });
    if (this.link.connected) this.send(); // a pooled connection is up already
  }

  /** The connection is up: write the head, then the body as it comes. */
  private send(): void {
    const { socket, backend } = this.link!.conn;
    const { client, head, upgrade } = this.o;
    this.phase = 'exchanging';
    this.link!.conn.requests++;
    this.link!.listen();
    client.on('drain', this.onClientDrain);
    socket.write(backendRequestHead(head, client.remoteAddress ?? '', this.request.framing, upgrade, backend.name));
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

  private readonly onBackendDrain = (): void => {
    if (this.request.phase === 'forwarded') return;
    this.backendClock.stop();
    this.o.client.resume();
  };

  private readonly onClientDrain = (): void => {
    if (this.phase !== 'exchanging') return;
    this.backendClock.arm();
    this.link!.conn.socket.resume();
  };

  private readonly onBackendData = (chunk: Buffer): void => {
    this.backendClock.touch();
    try {
      this.response.push(chunk);
    } catch (err) {
      if (!(err instanceof HttpError)) throw err;
      return this.fail('invalid', `invalid response: ${err.message}`);
    }
    if (this.response.phase === 'complete' && this.phase === 'exchanging') this.responseComplete();
  };

  private readonly onBackendEnd = (): void => {
    if (this.response.backendEnded()) return this.responseComplete();
    if (this.phase === 'exchanging' && this.response.phase !== 'complete') {
      this.fail('reset', 'backend closed the connection before the response was complete');
    }
  };

  private responseComplete(): void {
    if (this.request.phase === 'forwarded') return this.complete();
    // The backend answered before the request body was over (a 413, say). The connection can
    // no longer be trusted to be in step: close both sides once the response is out.
    this.releaseBackend('destroy', 'success');
    this.end();
  }

  /** The one path for a backend that let us down: account, then retry, answer or cut. */
  private fail(kind: Failure, reason: string): void {
    if (this.phase === 'done') return;
    const { head, client, context, upstream } = this.o;
    const { conn } = this.link!;
    // A reused connection that died before answering is the stale-socket race, not a sick backend.
    const stale = conn.reused && !this.response.clientWritten && !this.response.partialHead && kind === 'reset';
    const requestSent = this.phase === 'exchanging';
    this.releaseBackend('destroy', stale || kind === 'local' ? 'neutral' : reason);
    const step = nextStep({
      kind,
      stale,
      requestSent,
      clientWritten: this.response.clientWritten,
      staleRetried: this.staleRetried,
      bodySent: this.request.started,
      method: head.method,
      anotherBackend: upstream.pool.available().some((b) => !this.tried.has(b)),
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
    const { head, hooks, context } = this.o;
    if (logIt) context.log(`${status} for ${head.method} ${head.target}: ${detail}`);
    this.response.keepClient = mayKeep && hooks.keepAlive() && this.request.phase === 'forwarded';
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
  private releaseBackend(socket: 'keep' | 'destroy', outcome: string): void {
    const { conn } = this.link!;
    const { pool } = this.o.upstream;
    this.backendClock.stop();
    this.link!.detach();
    this.o.client.off('drain', this.onClientDrain);
    conn.backend.active--;
    if (outcome === 'success') pool.succeeded(conn.backend);
    else if (outcome !== 'neutral') pool.failed(conn.backend, outcome);
    if (socket === 'keep') this.o.context.connections.release(conn);
    else if (socket === 'destroy') conn.socket.destroy();
  }

  /** 101 Switching Protocols: from now on the two sockets are a plain byte tunnel (part 2's pump). */
  private switchProtocols(head: ResponseHead, rest: Buffer): void {
    const { client, hooks, context, upgrade } = this.o;
    const { conn } = this.link!;
    if (upgrade === undefined) return this.fail('invalid', 'backend switched protocols unasked');
    if (this.request.phase !== 'forwarded') return this.fail('invalid', 'backend switched protocols mid-body: the tunnel would carry the rest');
    this.backendClock.stop();
    this.clientClock.stop();
    this.link!.detach();
    client.off('drain', this.onClientDrain);
    conn.backend.active--;
    this.o.upstream.pool.succeeded(conn.backend);
    this.response.write(clientResponseHead(head, { kind: 'none' }, false));
    if (rest.length > 0) this.response.write(rest);
    const early = hooks.takeClient();
    if (early.length > 0) conn.socket.write(early);
    this.phase = 'tunnel';
    tunnel(client, conn.socket, { onBuffered: context.onBuffered, idleTimeoutMs: context.config.tunnelIdleTimeoutMs });
    client.resume();
    conn.socket.resume();
    hooks.finished({ keepClient: false, upgraded: true });
  }

  private end(): void {
    if (this.phase === 'done' || this.phase === 'tunnel') return;
    this.phase = 'done';
    this.backendClock.stop();
    this.clientClock.stop();
    this.o.hooks.finished({ keepClient: this.response.keepClient });
  }
}

const CUT_SHORT = 'the client closed before its request body was complete';
