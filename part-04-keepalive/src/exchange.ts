// One request and its response: choose a backend, send the request, stream the response back.
// Retries happen here, and only while they are safe.
import type net from 'node:net';
import { tunnel } from './pump.ts';
import { BodyDecoder, encodeChunk, LAST_CHUNK, responseFraming, type Framing } from './http/body.ts';
import { backendRequestHead, clientResponseHead } from './http/headers.ts';
import { headerTokens, parseResponseHead, type RequestHead, type ResponseHead } from './http/parser.ts';
import { errorResponse, HttpError } from './http/errors.ts';
import type { BackendConnection, ConnectionPool } from './connection-pool.ts';
import type { Backend, Pool } from './pool.ts';
import type { Strategy } from './strategies/index.ts';
import type { ProxyConfig } from './config.ts';

export interface Upstream {
  name: string;
  pool: Pool;
  strategy: Strategy;
}

/** What an exchange needs from the proxy around it. */
export interface ExchangeContext {
  config: ProxyConfig;
  connections: ConnectionPool;
  log: (line: string) => void;
  /** Our own shortage (out of descriptors): logged once per burst, not per request. */
  onLocalError: (message: string) => void;
  /** Records bytes queued in user space on a socket we wrote to. */
  onBuffered: (bytes: number) => void;
}

export interface ExchangeHooks {
  /** The whole request has gone to the backend; `rest` is what the client sent after it (pipelined requests). */
  requestForwarded(rest: Buffer): void;
  /** Asked when the response head is written: may the client connection carry another request? */
  keepAlive(): boolean;
  /** The exchange is over. keepClient: the client connection may carry another request. */
  finished(outcome: { keepClient: boolean; upgraded?: boolean }): void;
  /** For an upgrade: hand over the client socket with whatever it sent after the request. */
  takeClient(): Buffer;
}

const IDEMPOTENT = new Set(['GET', 'HEAD', 'OPTIONS', 'PUT', 'DELETE', 'TRACE']);
const EMPTY = Buffer.alloc(0);
/** Errors of our own process, not of the backend: out of file descriptors or local ports. */
const LOCAL_ERRORS = new Set(['EMFILE', 'ENFILE', 'EADDRNOTAVAIL', 'ENOBUFS']);

/**
 * Why a backend connection failed. Only the backend's own faults count against its health;
 * 'local' is our own shortage (nginx counts neither it nor a client's faults).
 */
type Failure = 'connect' | 'timeout' | 'reset' | 'invalid' | 'local';

export class Exchange {
  /** Every byte of the request (head and whole body) has been written to a backend. */
  requestForwarded = false;
  private readonly tried = new Set<Backend>();
  private readonly requestDecoder: BodyDecoder;
  /** Client bytes held until a backend is ready, so a failed connect loses nothing. */
  private held: Buffer[] = [];
  /** The client sent FIN; what it sent before may still complete the request. */
  private clientFinished = false;
  private bodyBytes = 0;
  private conn: BackendConnection | undefined;
  private connected = false;
  private bodyStarted = false;
  private responseStarted = false;
  private responseBuffer: Buffer = EMPTY;
  private responseHead: ResponseHead | undefined;
  private responseDecoder: BodyDecoder | undefined;
  private clientFraming: Framing = { kind: 'none' };
  private keepClient = false;
  /** The backend's clock: time between two of its reads or drains (proxy_read/send_timeout). */
  private backendTimer: NodeJS.Timeout | undefined;
  /** The client's clock: time between two reads of the request body (client_body_timeout). */
  private clientTimer: NodeJS.Timeout | undefined;
  private backendError: NodeJS.ErrnoException | undefined;
  private outOfStep = false;
  private staleRetried = false;
  private over = false;

  constructor(
    private readonly client: net.Socket,
    private readonly head: RequestHead,
    framing: Framing,
    private readonly upstream: Upstream,
    private readonly upgrade: string | undefined,
    private readonly ctx: ExchangeContext,
    private readonly hooks: ExchangeHooks,
  ) {
    this.requestDecoder = new BodyDecoder(framing, 400);
  }

  /** Starts with the bytes that came after the request head. */
  start(initial: Buffer): void {
    if (this.requestDecoder.done) this.requestComplete(initial);
    else if (initial.length > 0) this.held.push(initial);
    this.attempt(false);
  }

  /** Body bytes from the client. */
  clientBytes(chunk: Buffer): void {
    if (this.over) return; // answered early; the rest of the body is not needed
    if (this.connected) this.forwardBody(chunk);
    else {
      this.held.push(chunk);
      this.client.pause(); // one chunk is enough to hold while we wait for a backend
    }
  }

  /** The client has sent FIN (half-close). It may still read our answer. */
  clientEnded(): void {
    this.clientFinished = true;
    // Not yet connected: the held bytes decide once they are forwarded (see send()).
    if (this.connected && !this.requestForwarded) this.clientFault(new HttpError(400, 'the client closed before its request body was complete'));
  }

  /** The client went away: drop the backend connection, it is mid-exchange. */
  abort(): void {
    if (this.over || !this.conn) return this.end();
    this.releaseBackend('destroy');
    this.end();
  }

  private attempt(freshOnly: boolean): void {
    const backend = freshOnly
      ? this.conn!.backend
      : this.upstream.strategy.pick(this.upstream.pool.available().filter((b) => !this.tried.has(b)));
    if (!backend) {
      if (this.tried.size === 0) return this.respondError(503, `no healthy backend in upstream "${this.upstream.name}"`);
      return; // unreachable: fail() answers when no other backend is left
    }
    this.tried.add(backend);
    backend.active++;
    const idle = freshOnly ? undefined : this.ctx.connections.takeIdle(backend);
    const conn = idle ?? this.ctx.connections.open(backend);
    this.conn = conn;
    this.connected = false;
    this.backendError = undefined;
    conn.socket.on('close', this.onBackendClose);
    conn.socket.on('error', this.onBackendError);
    if (idle) return this.send();
    conn.socket.setTimeout(this.ctx.config.connectTimeoutMs);
    conn.socket.on('timeout', this.onConnectTimeout);
    conn.socket.once('connect', this.onConnect);
  }

  private readonly onConnect = (): void => {
    this.conn!.socket.setTimeout(0);
    this.conn!.socket.off('timeout', this.onConnectTimeout);
    this.send();
  };

  private readonly onConnectTimeout = (): void => {
    this.fail('timeout', `connect timed out after ${this.ctx.config.connectTimeoutMs} ms`);
  };

  /** The connection is up: write the head, then the body as it comes. */
  private send(): void {
    const conn = this.conn!;
    this.connected = true;
    conn.requests++;
    conn.socket.on('data', this.onBackendData);
    conn.socket.on('end', this.onBackendEnd);
    conn.socket.on('drain', this.onBackendDrain);
    this.client.on('drain', this.onClientDrain);
    const head = backendRequestHead(this.head, this.client.remoteAddress ?? '', this.requestDecoder.framing, this.upgrade, conn.backend.name);
    conn.socket.write(head);
    if (this.requestForwarded) this.armBackendTimer(); // bodiless: the backend's turn now
    // One piece: if the body ends inside it, what follows is handed back whole.
    if (this.held.length > 0) this.forwardBody(Buffer.concat(this.held.splice(0)));
    if (this.over || this.requestForwarded) return;
    if (this.clientFinished) return this.clientFault(new HttpError(400, 'the client closed before its request body was complete'));
    this.armClientTimer();
    this.client.resume();
  }

  private forwardBody(chunk: Buffer): void {
    if (this.requestForwarded || this.over) return; // bytes after the body belong to the next request (already handed back)
    const chunked = this.requestDecoder.framing.kind === 'chunked';
    const backend = this.conn!.socket;
    const max = this.ctx.config.clientMaxBodySize;
    this.clientTimer?.refresh();
    let rest: Buffer | undefined;
    try {
      rest = this.requestDecoder.push(chunk, (data) => {
        this.bodyBytes += data.length;
        // Content-Length was checked before we began; a chunked body is counted as it comes.
        if (max > 0 && this.bodyBytes > max) throw new HttpError(413, `request body larger than ${max} bytes`);
        this.bodyStarted = true;
        const ok = chunked ? encodeChunk(data).map((part) => backend.write(part)).every(Boolean) : backend.write(data);
        this.ctx.onBuffered(backend.writableLength);
        if (!ok) {
          this.client.pause(); // the backend reads slower than the client sends: its clock runs
          this.armBackendTimer();
        }
      });
    } catch (err) {
      if (!(err instanceof HttpError)) throw err;
      return this.clientFault(err);
    }
    if (rest === undefined) return;
    if (chunked) backend.write(LAST_CHUNK);
    this.requestComplete(rest);
    this.armBackendTimer(); // now the backend's clock starts (unless it has answered already)
    if (this.responseDecoder?.done) this.complete();
  }

  private requestComplete(rest: Buffer): void {
    this.requestForwarded = true;
    this.stopClientTimer();
    this.hooks.requestForwarded(rest);
  }

  private readonly onBackendDrain = (): void => {
    if (this.requestForwarded) return;
    this.stopBackendTimer();
    this.client.resume();
  };

  private readonly onClientDrain = (): void => {
    if (!this.conn || this.over) return;
    this.armBackendTimer();
    this.conn.socket.resume();
  };

  private readonly onBackendData = (chunk: Buffer): void => {
    this.backendTimer?.refresh();
    try {
      if (this.responseDecoder) return this.forwardResponse(chunk);
      this.responseBuffer = this.responseBuffer.length > 0 ? Buffer.concat([this.responseBuffer, chunk]) : chunk;
      this.readResponseHead();
    } catch (err) {
      if (!(err instanceof HttpError)) throw err;
      this.fail('invalid', `invalid response: ${err.message}`);
    }
  };

  private readResponseHead(): void {
    for (;;) {
      const parsed = parseResponseHead(this.responseBuffer, this.ctx.config.limits);
      if (!parsed) return;
      const { head } = parsed;
      const rest = this.responseBuffer.subarray(parsed.length);
      this.responseBuffer = EMPTY;
      if (head.status === 101) return this.switchProtocols(head, rest);
      if (head.status >= 100 && head.status < 200) {
        // 100 Continue and friends go straight to the client; the real response follows.
        this.writeClient(clientResponseHead(head, { kind: 'none' }, false));
        this.responseBuffer = rest;
        continue;
      }
      return this.startResponse(head, rest);
    }
  }

  private startResponse(head: ResponseHead, rest: Buffer): void {
    const framing = responseFraming(head, this.head.method);
    this.responseHead = head;
    this.responseDecoder = new BodyDecoder(framing, 502);
    // A body that runs until close is re-chunked for HTTP/1.1 clients, so their connection survives.
    const http11 = this.head.version === '1.1';
    this.clientFraming =
      framing.kind === 'chunked' || framing.kind === 'close' ? (http11 ? { kind: 'chunked' } : { kind: 'close' }) : framing;
    // Decided now, as the head goes out: a shutdown that began meanwhile says Connection: close.
    this.keepClient = this.hooks.keepAlive() && this.clientFraming.kind !== 'close' && this.requestForwarded;
    this.client.cork(); // head and first body bytes leave together
    this.writeClient(clientResponseHead(head, this.clientFraming, !this.keepClient));
    this.forwardResponse(rest);
    process.nextTick(() => this.client.uncork());
  }

  private forwardResponse(chunk: Buffer): void {
    const rest = this.responseDecoder!.push(chunk, (data) => {
      // The decoder never hands out an empty piece: as a chunk it would read "0\r\n\r\n", the end.
      const ok = this.clientFraming.kind === 'chunked' ? encodeChunk(data).map((p) => this.writeClient(p)).every(Boolean) : this.writeClient(data);
      if (!ok) {
        this.conn!.socket.pause(); // the client reads slower than the backend sends: not the backend's delay
        this.stopBackendTimer();
      }
    });
    if (rest === undefined) return;
    if (rest.length > 0) this.outOfStep = true; // bytes after the response: the connection is out of step
    this.finishResponseBody();
  }

  private finishResponseBody(): void {
    if (this.clientFraming.kind === 'chunked') this.writeClient(LAST_CHUNK);
    if (this.requestForwarded) return this.complete();
    // The backend answered before the request body was over (a 413, say). The connection can
    // no longer be trusted to be in step: close both sides once the response is out.
    this.releaseBackend('destroy', 'success');
    this.end();
  }

  private readonly onBackendEnd = (): void => {
    if (this.responseDecoder?.framing.kind === 'close' && !this.responseDecoder.done) {
      this.responseDecoder.done = true;
      this.finishResponseBody();
      return;
    }
    if (!this.over && !this.responseDecoder?.done) this.fail('reset', 'backend closed the connection before the response was complete');
  };

  private readonly onBackendError = (err: NodeJS.ErrnoException): void => {
    this.backendError = err;
  };

  private readonly onBackendClose = (): void => {
    if (this.over) return;
    const err = this.backendError;
    if (err?.code !== undefined && LOCAL_ERRORS.has(err.code)) return this.fail('local', `cannot open a connection: ${err.message}`);
    this.fail(this.connected ? 'reset' : 'connect', err?.message ?? 'backend closed the connection');
  };

  /** The one path for a backend that let us down: account, then retry, answer or cut. */
  private fail(kind: Failure, reason: string): void {
    if (this.over) return;
    const conn = this.conn!;
    // A reused connection that died before answering is the stale-socket race, not a sick backend.
    const stale = conn.reused && !this.responseStarted && this.responseBuffer.length === 0 && kind === 'reset';
    this.releaseBackend('destroy', stale || kind === 'local' ? 'neutral' : reason);

    if (this.responseStarted) {
      // The client already has part of a response: a second status line would corrupt it.
      this.ctx.log(`${this.head.method} ${this.head.target}: ${reason} after the response began; cutting the client`);
      this.client.destroy();
      return this.end();
    }
    if (kind === 'local') {
      this.ctx.onLocalError(reason);
      return this.respondError(503, reason, false);
    }
    if (stale && !this.bodyStarted && !this.staleRetried) {
      this.staleRetried = true;
      return this.attempt(true); // once, on a fresh connection to the same backend
    }
    // Another backend may be tried if it cannot do harm: nothing was sent yet (the connect
    // failed), or the request is idempotent and has no body that was already streamed away.
    const replayable = kind !== 'invalid' && !this.bodyStarted && (!this.connected || IDEMPOTENT.has(this.head.method));
    const next = replayable ? this.upstream.pool.available().some((b) => !this.tried.has(b)) : false;
    if (next) return this.attempt(false);
    this.respondError(kind === 'timeout' ? 504 : 502, reason);
  }

  /** The client broke the rules mid-body (too large, too slow, malformed, cut short): its fault, not the backend's. */
  private clientFault(err: HttpError): void {
    if (this.over) return;
    if (this.conn) this.releaseBackend('destroy', 'neutral');
    if (this.responseStarted) {
      this.client.destroy();
      return this.end();
    }
    this.ctx.log(`${err.status} for ${this.head.method} ${this.head.target}: ${err.message}`);
    this.writeClient(errorResponse(err.status, err.message, false));
    this.end();
  }

  private respondError(status: number, detail: string, logIt = true): void {
    if (logIt) this.ctx.log(`${status} for ${this.head.method} ${this.head.target}: ${detail}`);
    this.keepClient = this.hooks.keepAlive() && this.requestForwarded;
    this.writeClient(errorResponse(status, detail, this.keepClient));
    this.end();
  }

  /** Both directions are over: give the backend connection back if it is still in step. */
  private complete(): void {
    if (this.over) return;
    const head = this.responseHead!;
    const reusable =
      this.responseDecoder!.framing.kind !== 'close' &&
      head.version === '1.1' &&
      !headerTokens(head, 'connection').includes('close') &&
      !this.outOfStep;
    this.releaseBackend(reusable ? 'keep' : 'destroy', 'success');
    this.end();
  }

  /**
   * The one release path for the backend connection (nginx's free(peer, state)): detach our
   * listeners, count the request as done, record the outcome, then pool or destroy the socket.
   * outcome: 'success', 'neutral' (nobody's fault), or the failure's reason.
   */
  private releaseBackend(socket: 'keep' | 'destroy', outcome: string = 'neutral'): void {
    const conn = this.conn!;
    this.stopBackendTimer();
    this.detachBackend();
    conn.backend.active--;
    if (outcome === 'success') this.upstream.pool.succeeded(conn.backend);
    else if (outcome !== 'neutral') this.upstream.pool.failed(conn.backend, outcome);
    if (socket === 'keep') this.ctx.connections.release(conn);
    else conn.socket.destroy();
  }

  /** 101 Switching Protocols: from now on the two sockets are a plain byte tunnel (part 2's pump). */
  private switchProtocols(head: ResponseHead, rest: Buffer): void {
    const conn = this.conn!;
    if (this.upgrade === undefined) return this.fail('invalid', 'backend switched protocols unasked');
    this.stopBackendTimer();
    this.detachBackend();
    conn.backend.active--;
    this.upstream.pool.succeeded(conn.backend);
    this.writeClient(clientResponseHead(head, { kind: 'none' }, false));
    if (rest.length > 0) this.writeClient(rest);
    const early = this.hooks.takeClient();
    if (early.length > 0) conn.socket.write(early);
    this.over = true;
    this.stopClientTimer();
    tunnel(this.client, conn.socket, { onBuffered: this.ctx.onBuffered, idleTimeoutMs: this.ctx.config.tunnelIdleTimeoutMs });
    this.client.resume();
    conn.socket.resume();
    this.hooks.finished({ keepClient: false, upgraded: true });
  }

  private writeClient(data: Buffer): boolean {
    this.responseStarted = true;
    const ok = this.client.write(data);
    this.ctx.onBuffered(this.client.writableLength);
    return ok;
  }

  private armBackendTimer(): void {
    if (this.backendTimer) return void this.backendTimer.refresh();
    const ms = this.ctx.config.responseTimeoutMs;
    this.backendTimer = setTimeout(() => this.fail('timeout', `backend silent for ${ms} ms: timed out`), ms);
  }

  private stopBackendTimer(): void {
    clearTimeout(this.backendTimer);
    this.backendTimer = undefined;
  }

  private armClientTimer(): void {
    if (this.clientTimer) return void this.clientTimer.refresh();
    const ms = this.ctx.config.clientBodyTimeoutMs;
    this.clientTimer = setTimeout(() => this.clientFault(new HttpError(408, `request body stalled for ${ms} ms`)), ms);
  }

  private stopClientTimer(): void {
    clearTimeout(this.clientTimer);
    this.clientTimer = undefined;
  }

  private detachBackend(): void {
    const socket = this.conn!.socket;
    socket.setTimeout(0);
    socket.off('connect', this.onConnect);
    socket.off('timeout', this.onConnectTimeout);
    socket.off('data', this.onBackendData);
    socket.off('end', this.onBackendEnd);
    socket.off('drain', this.onBackendDrain);
    socket.off('close', this.onBackendClose);
    socket.off('error', this.onBackendError);
    this.client.off('drain', this.onClientDrain);
  }

  private end(): void {
    if (this.over) return;
    this.over = true;
    this.stopBackendTimer();
    this.stopClientTimer();
    this.hooks.finished({ keepClient: this.keepClient });
  }
}
