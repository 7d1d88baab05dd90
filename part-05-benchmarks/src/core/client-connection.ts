// One client connection: read a request head, run its exchange, then wait for the next request
// (keep-alive), in order even when the client sends several at once (pipelining).
import type net from 'node:net';
import { parseRequestHead, headerValues, type RequestHead } from '../http/parser.ts';
import { clientAsksToPersist } from '../http/persistence.ts';
import { requestFraming, type Framing } from '../http/body.ts';
import { upgradeRequested } from '../http/headers.ts';
import { errorBody, errorResponse, HttpError } from '../http/errors.ts';
import { Exchange, type ExchangeContext, type ExchangeHooks, type Upstream } from './exchange.ts';
import type { VirtualHosts } from './virtual-hosts.ts';
import { Deadline, type DeadlineOwner } from './deadlines.ts';
import { recordRefusal } from './request-record.ts';
import type { Outcome } from './outcome.ts';

export interface ClientContext extends ExchangeContext {
  hosts: VirtualHosts;
  upstreams: Map<string, Upstream>;
}

/**
 * idle: between requests, nothing buffered (keepAliveTimeoutMs runs).
 * head: a request has begun and its head is not complete (clientHeaderTimeoutMs runs: slowloris).
 * exchange: a request is being served; pipelined bytes wait in the buffer, the socket paused.
 * tunnel: upgraded (WebSocket); the byte pump owns the socket.
 * closing: our side is ended; we read and drop until the client closes, or LINGER_MS.
 */
export type ClientPhase = { name: 'idle' | 'head' | 'tunnel' | 'closing' } | { name: 'exchange'; exchange: Exchange };

const IDLE: ClientPhase = { name: 'idle' };
const HEAD: ClientPhase = { name: 'head' };
const TUNNEL: ClientPhase = { name: 'tunnel' };
const CLOSING: ClientPhase = { name: 'closing' };
const EMPTY = Buffer.alloc(0);
/** How long we keep reading (and dropping) a client's bytes after we said we are closing. */
const LINGER_MS = 2000;

/** The connection is its exchanges' hooks: methods on one object, no functions made per request. */
export class ClientConnection implements ExchangeHooks, DeadlineOwner {
  phase: ClientPhase = IDLE;
  private buffer: Buffer = EMPTY;
  private requests = 0;
  /** The time limit of the current phase, if it has one. */
  private readonly deadline = new Deadline(0, this);
  /** Shutdown or reload asked us to close after the response in flight. */
  private stopping = false;

  constructor(
    private readonly socket: net.Socket,
    private readonly ctx: ClientContext,
  ) {
    socket.on('data', this.onData);
    socket.on('end', this.onEnd);
    socket.on('drain', this.onDrain);
    socket.on('error', this.onError);
    socket.once('close', this.onClose);
    this.next();
  }

  /** Graceful shutdown: close now if idle, else after the response in flight. */
  shutdown(): void {
    this.stopping = true;
    if (this.phase.name === 'exchange') this.phase.exchange.closeAfter();
    // A tunnel has no response to finish; it closes now too.
    if (this.phase.name === 'idle' || this.phase.name === 'tunnel') this.socket.destroy();
  }

  private readonly onData = (chunk: Buffer): void => {
    const p = this.phase;
    if (p.name === 'closing') return; // lingering: read and drop
    if (p.name === 'exchange' && p.exchange.readsBody) return p.exchange.clientBytes(chunk);
    this.buffer = this.buffer.length > 0 ? Buffer.concat([this.buffer, chunk]) : chunk;
    if (p.name === 'exchange') this.socket.pause(); // a pipelined request waits for the one before it
    else this.next();
  };

  /** Parses the next request from the buffer, or waits for one. */
  private next(): void {
    if (this.buffer.length === 0) {
      if (this.socket.readableEnded || this.stopping) return this.close();
      // Idle between requests: nginx's keepalive_timeout.
      return this.enter(IDLE, this.ctx.config.keepAliveTimeoutMs);
    }
    // A request has begun: all of its head must arrive in time (client_header_timeout, slowloris).
    if (this.phase.name !== 'head') {
      this.enter(HEAD, this.ctx.config.clientHeaderTimeoutMs);
    }
    let head: RequestHead | undefined;
    try {
      const parsed = parseRequestHead(this.buffer, this.ctx.config.limits);
      if (!parsed) {
        if (this.socket.readableEnded) {
          this.leftMidHead();
          this.close();
        }
        return;
      }
      head = parsed.head;
      const initial = this.buffer.subarray(parsed.length);
      this.buffer = EMPTY;
      this.startExchange(head, initial);
    } catch (err) {
      if (!(err instanceof HttpError)) throw err;
      this.reject(err, head);
    }
  }

  private startExchange(head: RequestHead, initial: Buffer): void {
    const framing = requestFraming(head);
    checkBodySize(framing, this.ctx.config.clientMaxBodySize);
    const host = headerValues(head, 'host')[0];
    const upstreamName = this.ctx.hosts.route(host);
    if (upstreamName === undefined) throw new HttpError(404, `no site for host "${host ?? ''}"`);
    this.requests++;
    this.ctx.counters.requests++;
    const upstream = this.ctx.upstreams.get(upstreamName);
    if (upstream === undefined) throw new Error(`virtual hosts route to unknown upstream "${upstreamName}"`); // config.ts rules this out
    const exchange = new Exchange({
      client: this.socket,
      head,
      framing,
      upstream,
      keepClient: clientAsksToPersist(head) && this.requests < this.ctx.config.keepAliveRequests && !this.stopping,
      upgrade: upgradeRequested(head),
      context: this.ctx,
      hooks: this,
    });
    this.enter({ name: 'exchange', exchange });
    // A bodiless request's next bytes are the next request: they wait here, not in the exchange.
    if (exchange.readsBody) return exchange.start(initial);
    this.keepNext(initial);
    exchange.start(EMPTY);
  }

  // --- The exchange's hooks (ExchangeHooks) ---

  bodyRead(rest: Buffer): void {
    this.keepNext(rest);
  }

  handOver(): Buffer {
    this.detach();
    const early = this.buffer;
    this.buffer = EMPTY;
    return early;
  }

  finished(next: 'keep' | 'close' | 'tunnel'): void {
    if (next === 'tunnel') return;
    if (next === 'close' || this.stopping) return this.close();
    this.socket.resume(); // paused for a pipelined request, or by the exchange for a slow backend
    this.next();
  }

  /** Keeps what the client sent after the current request (pipelining) until that request is done. */
  private keepNext(rest: Buffer): void {
    this.buffer = rest.length > 0 ? Buffer.from(rest) : EMPTY;
    if (rest.length > 0) this.socket.pause();
  }

  /** A request we refuse before any exchange: say why, then close (the stream is no longer trustworthy). */
  private reject(err: HttpError, head?: RequestHead): void {
    const toHead = head?.method === 'HEAD';
    const asked = head ? `${head.method} ${head.target} HTTP/${head.version}` : (err.requestLine ?? 'a request');
    // Once, to the error log, as nginx's "client sent invalid header line".
    this.ctx.log(`${err.status} for ${asked} from ${this.socket.remoteAddress ?? '-'}: ${err.message}`);
    if (!this.socket.destroyed) this.socket.write(errorResponse(err.status, err.message, false, toHead));
    // The proxy refused the request (PR), or the client took too long to send its head (cR).
    const timedOut = err.status === 408;
    const outcome: Outcome & { status: number } = { by: timedOut ? 'client' : 'proxy', in: 'request', status: err.status, reason: err.message, timedOut };
    const bytes = toHead ? 0 : errorBody(err.status, err.message).length;
    recordRefusal(this.ctx, this.socket.remoteAddress ?? '-', outcome, bytes, head, err.requestLine);
    this.close();
  }

  /** The client left in the middle of a head: nothing to answer, but the access log says 400 (CR), as nginx's does. */
  private leftMidHead(): void {
    const outcome: Outcome & { status: number } = { by: 'client', in: 'request', status: 400, reason: 'the client left mid-head', timedOut: false };
    recordRefusal(this.ctx, this.socket.remoteAddress ?? '-', outcome, 0);
  }

  /** Ends our side, then reads and drops until the client closes or LINGER_MS passes. */
  private close(): void {
    if (this.phase.name === 'closing') return;
    this.buffer = EMPTY;
    this.socket.end();
    this.socket.resume();
    this.enter(CLOSING, LINGER_MS);
  }

  private readonly onEnd = (): void => {
    const p = this.phase;
    if (p.name === 'closing') return void this.socket.destroy();
    // Half-close: the client has said all it will say, and still waits for its answer. The
    // exchange decides whether what it sent is a whole request.
    if (p.name !== 'exchange') return this.next();
    if (p.exchange.readsBody) p.exchange.clientEnded();
  };

  private readonly onDrain = (): void => {
    if (this.phase.name === 'exchange') this.phase.exchange.clientDrained();
  };

  private readonly onError = (): void => {}; // 'close' follows, and cleans up

  private readonly onClose = (): void => {
    this.deadline.stop();
    if (this.phase.name === 'exchange') this.phase.exchange.abort();
  };

  /** For an upgrade: the tunnel takes the socket over. */
  private detach(): void {
    this.enter(TUNNEL);
    this.socket.off('data', this.onData);
    this.socket.off('end', this.onEnd);
    this.socket.off('close', this.onClose);
    this.socket.off('drain', this.onDrain);
  }

  /** Moves to a phase, with the time limit that bounds it (if any). */
  private enter(phase: ClientPhase, ms?: number): void {
    this.phase = phase;
    if (ms === undefined) this.deadline.stop();
    else this.deadline.arm(ms);
  }

  /** The phase's time limit passed: what that means depends on the phase. */
  expired(): void {
    if (this.phase.name === 'head') this.reject(new HttpError(408, 'request head not received in time'));
    else this.socket.destroy(); // idle too long, or done lingering
  }
}

/** nginx's client_max_body_size, checked before anything reaches a backend. */
function checkBodySize(framing: Framing, max: number): void {
  if (max > 0 && framing.kind === 'length' && framing.length > max) {
    throw new HttpError(413, `request body of ${framing.length} bytes is larger than ${max}`);
  }
}
