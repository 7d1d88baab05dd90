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
  /** Records bytes queued in user space on a socket we wrote to. */
  onBuffered: (bytes: number) => void;
}

export interface ExchangeHooks {
  /** The request body is complete; `rest` is what the client sent after it (pipelined requests). */
  requestDone(rest: Buffer): void;
  /** The exchange is over. keepClient: the client connection may carry another request. */
  finished(outcome: { keepClient: boolean; upgraded?: boolean }): void;
  /** For an upgrade: hand over the client socket with whatever it sent after the request. */
  takeClient(): Buffer;
}

const IDEMPOTENT = new Set(['GET', 'HEAD', 'OPTIONS', 'PUT', 'DELETE', 'TRACE']);
const EMPTY = Buffer.alloc(0);

type Failure = 'connect' | 'timeout' | 'error' | 'invalid';

export class Exchange {
  requestDone = false;
  private readonly tried = new Set<Backend>();
  private readonly requestDecoder: BodyDecoder;
  /** Client bytes held until a backend is ready, so a failed connect loses nothing. */
  private held: Buffer[] = [];
  private conn: BackendConnection | undefined;
  private connected = false;
  private bodyStarted = false;
  private responseStarted = false;
  private responseBuffer: Buffer = EMPTY;
  private responseHead: ResponseHead | undefined;
  private responseDecoder: BodyDecoder | undefined;
  private clientFraming: Framing = { kind: 'none' };
  private timer: NodeJS.Timeout | undefined;
  private lastError = '';
  private staleRetried = false;
  private over = false;

  constructor(
    private readonly client: net.Socket,
    private readonly head: RequestHead,
    framing: Framing,
    private readonly upstream: Upstream,
    private readonly clientKeepAlive: boolean,
    private readonly upgrade: string | undefined,
    private readonly ctx: ExchangeContext,
    private readonly hooks: ExchangeHooks,
  ) {
    this.requestDecoder = new BodyDecoder(framing, 400);
  }

  /** Starts with the bytes that came after the request head. */
  start(initial: Buffer): void {
    if (this.requestDecoder.done) {
      this.requestDone = true;
      this.hooks.requestDone(initial);
    } else if (initial.length > 0) {
      this.held.push(initial);
    }
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

  /** The client went away: drop the backend connection, it is mid-exchange. */
  abort(): void {
    if (this.over) return;
    if (this.conn) {
      this.detachBackend();
      this.conn.socket.destroy();
      this.conn.backend.active--;
    }
    this.end({ keepClient: false });
  }

  private attempt(freshOnly: boolean): void {
    const backend = freshOnly
      ? this.conn!.backend
      : this.upstream.strategy.pick(this.upstream.pool.available().filter((b) => !this.tried.has(b)));
    if (!backend) {
      if (this.tried.size === 0) return this.respondError(503, `no healthy backend in upstream "${this.upstream.name}"`);
      return this.respondError(this.lastError.includes('timed out') ? 504 : 502, this.lastError);
    }
    this.tried.add(backend);
    backend.active++;
    const idle = freshOnly ? undefined : this.ctx.connections.takeIdle(backend);
    const conn = idle ?? this.ctx.connections.open(backend);
    this.conn = conn;
    this.connected = false;
    conn.socket.on('close', this.onBackendClose);
    conn.socket.on('error', this.onBackendError);
    if (idle) return this.send();
    const timeout = this.ctx.config.connectTimeoutMs;
    conn.socket.setTimeout(timeout, () => conn.socket.destroy(new Error(`connect timed out after ${timeout} ms`)));
    conn.socket.once('connect', () => {
      conn.socket.setTimeout(0);
      this.send();
    });
  }

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
    this.armTimer(this.ctx.config.responseTimeoutMs, 'no response head');
    for (const chunk of this.held.splice(0)) this.forwardBody(chunk);
    if (!this.requestDone) this.client.resume();
  }

  private forwardBody(chunk: Buffer): void {
    if (this.requestDone) return; // bytes after the body belong to the next request (already handed back)
    const chunked = this.requestDecoder.framing.kind === 'chunked';
    const backend = this.conn!.socket;
    let rest: Buffer | undefined;
    try {
      rest = this.requestDecoder.push(chunk, (data) => {
        this.bodyStarted = true;
        const ok = chunked ? encodeChunk(data).map((part) => backend.write(part)).every(Boolean) : backend.write(data);
        this.ctx.onBuffered(backend.writableLength);
        if (!ok) this.client.pause(); // the backend reads slower than the client sends
      });
    } catch (err) {
      if (!(err instanceof HttpError)) throw err;
      return this.rejectBody(err);
    }
    if (rest === undefined) return;
    if (chunked) backend.write(LAST_CHUNK);
    this.requestDone = true;
    this.hooks.requestDone(rest);
    if (this.responseDecoder?.done) this.complete();
  }

  private readonly onBackendDrain = (): void => {
    if (!this.requestDone) this.client.resume();
  };

  private readonly onClientDrain = (): void => {
    this.conn?.socket.resume();
  };

  private readonly onBackendData = (chunk: Buffer): void => {
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
    this.clearTimer();
    const framing = responseFraming(head, this.head.method);
    this.responseHead = head;
    this.responseDecoder = new BodyDecoder(framing, 502);
    // A body that runs until close is re-chunked for HTTP/1.1 clients, so their connection survives.
    const http11 = this.head.version === '1.1';
    this.clientFraming =
      framing.kind === 'chunked' || framing.kind === 'close' ? (http11 ? { kind: 'chunked' } : { kind: 'close' }) : framing;
    const close = !this.clientKeepAlive || this.clientFraming.kind === 'close' || !this.requestDone;
    this.client.cork(); // head and first body bytes leave together
    this.writeClient(clientResponseHead(head, this.clientFraming, close));
    this.forwardResponse(rest);
    process.nextTick(() => this.client.uncork());
  }

  private forwardResponse(chunk: Buffer): void {
    const rest = this.responseDecoder!.push(chunk, (data) => {
      const ok = this.clientFraming.kind === 'chunked' ? encodeChunk(data).map((p) => this.writeClient(p)).every(Boolean) : this.writeClient(data);
      if (!ok) this.conn!.socket.pause(); // the client reads slower than the backend sends
    });
    if (rest === undefined) return;
    if (rest.length > 0) this.lastError = 'bytes after the response'; // the connection is out of step
    this.finishResponseBody();
  }

  private finishResponseBody(): void {
    if (this.clientFraming.kind === 'chunked') this.writeClient(LAST_CHUNK);
    if (this.requestDone) return this.complete();
    // The backend answered before the request body was over (a 413, say). The connection can
    // no longer be trusted to be in step: close both sides once the response is out.
    const conn = this.conn!;
    this.detachBackend();
    conn.socket.destroy();
    conn.backend.active--;
    this.upstream.pool.succeeded(conn.backend);
    this.end({ keepClient: false });
  }

  private readonly onBackendEnd = (): void => {
    if (this.responseDecoder?.framing.kind === 'close' && !this.responseDecoder.done) {
      this.responseDecoder.done = true;
      this.finishResponseBody();
      return;
    }
    if (!this.over && !this.responseDecoder?.done) this.fail('error', 'backend closed the connection before the response was complete');
  };

  private readonly onBackendError = (err: Error): void => {
    this.lastError = err.message;
  };

  private readonly onBackendClose = (): void => {
    if (this.over) return;
    const reason = this.lastError || 'backend closed the connection';
    this.fail(reason.includes('timed out') ? 'timeout' : this.connected ? 'error' : 'connect', reason);
  };

  private fail(kind: Failure, reason: string): void {
    const conn = this.conn!;
    this.lastError = reason;
    this.clearTimer();
    this.detachBackend();
    conn.socket.destroy();
    conn.backend.active--;
    // A reused connection that died before answering is the stale-socket race, not a sick backend.
    const stale = conn.reused && !this.responseStarted && this.responseBuffer.length === 0 && kind === 'error';
    if (!stale) this.upstream.pool.failed(conn.backend, reason);

    if (this.responseStarted) {
      // The client already has part of a response: a second status line would corrupt it.
      this.ctx.log(`${this.head.method} ${this.head.target}: ${reason} after the response began; cutting the client`);
      this.client.destroy();
      return this.end({ keepClient: false });
    }
    if (stale && !this.bodyStarted && !this.staleRetried) {
      this.staleRetried = true;
      return this.attempt(true); // once, on a fresh connection to the same backend
    }
    // Another backend may be tried if it cannot do harm: nothing was sent yet (the connect
    // failed), or the request is idempotent and has no body that was already streamed away.
    const replayable = kind !== 'invalid' && !this.bodyStarted && (!this.connected || IDEMPOTENT.has(this.head.method));
    if (replayable) return this.attempt(false);
    this.respondError(kind === 'timeout' ? 504 : 502, reason);
  }

  /** The request body turned out malformed mid-stream: the backend has half a request, drop it. */
  private rejectBody(err: HttpError): void {
    const conn = this.conn!;
    this.clearTimer();
    this.detachBackend();
    conn.socket.destroy();
    conn.backend.active--;
    if (this.responseStarted) this.client.destroy();
    else this.writeClient(errorResponse(err.status, err.message, false));
    this.end({ keepClient: false });
  }

  private respondError(status: number, detail: string): void {
    this.ctx.log(`${status} for ${this.head.method} ${this.head.target}: ${detail}`);
    const keep = this.clientKeepAlive && this.requestDone;
    this.writeClient(errorResponse(status, detail, keep));
    this.end({ keepClient: keep });
  }

  /** Both directions are over: give the backend connection back if it is still in step. */
  private complete(): void {
    if (this.over) return;
    const conn = this.conn!;
    const head = this.responseHead!;
    conn.backend.active--;
    this.upstream.pool.succeeded(conn.backend);
    this.detachBackend();
    const reusable =
      this.responseDecoder!.framing.kind !== 'close' &&
      head.version === '1.1' &&
      !headerTokens(head, 'connection').includes('close') &&
      this.lastError !== 'bytes after the response';
    if (reusable) this.ctx.connections.release(conn);
    else conn.socket.destroy();
    this.end({ keepClient: this.clientKeepAlive && this.clientFraming.kind !== 'close' });
  }

  /** 101 Switching Protocols: from now on the two sockets are a plain byte tunnel (part 2's pump). */
  private switchProtocols(head: ResponseHead, rest: Buffer): void {
    const conn = this.conn!;
    this.clearTimer();
    if (this.upgrade === undefined) return this.fail('invalid', 'backend switched protocols unasked');
    this.detachBackend();
    conn.backend.active--;
    this.upstream.pool.succeeded(conn.backend);
    this.writeClient(clientResponseHead(head, { kind: 'none' }, false));
    if (rest.length > 0) this.writeClient(rest);
    const early = this.hooks.takeClient();
    if (early.length > 0) conn.socket.write(early);
    this.over = true;
    tunnel(this.client, conn.socket, { onBuffered: this.ctx.onBuffered });
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

  private armTimer(ms: number, what: string): void {
    this.clearTimer();
    this.timer = setTimeout(() => {
      this.conn!.socket.destroy(new Error(`${what}: timed out after ${ms} ms`));
    }, ms);
  }

  private clearTimer(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
  }

  private detachBackend(): void {
    const socket = this.conn!.socket;
    socket.off('data', this.onBackendData);
    socket.off('end', this.onBackendEnd);
    socket.off('drain', this.onBackendDrain);
    socket.off('close', this.onBackendClose);
    socket.off('error', this.onBackendError);
    this.client.off('drain', this.onClientDrain);
  }

  private end(outcome: { keepClient: boolean }): void {
    if (this.over) return;
    this.over = true;
    this.clearTimer();
    this.hooks.finished(outcome);
  }
}
