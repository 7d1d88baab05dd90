// The response on its way to the client: its head read from the backend's bytes, 1xx passed on,
// its body relayed and re-framed (a body that runs until close is re-chunked for HTTP/1.1).
import type net from 'node:net';
import { BodyDecoder, encodeChunk, LAST_CHUNK, responseFraming, type BodySink, type Framing } from './http/body.ts';
import { clientResponseHead } from './http/headers.ts';
import { headerTokens, parseResponseHead, type HeadLimits, type RequestHead, type ResponseHead } from './http/parser.ts';

/**
 * head: waiting for the status line and fields (1xx responses pass through meanwhile).
 * body: the head went to the client; the body is being relayed.
 * complete: the last byte of the response has been written to the client.
 */
export type ResponsePhase = 'head' | 'body' | 'complete';

const EMPTY = Buffer.alloc(0);

export interface RelayEvents {
  /** 101 Switching Protocols: the caller takes over both sockets; `rest` came after the head. */
  switchProtocols(head: ResponseHead, rest: Buffer): void;
  /** Asked as the head goes out: may the client connection carry another request after this? */
  keepAlive(): boolean;
  /** The client's buffer is full: stop reading the backend until it drains. */
  clientFull(): void;
}

export class ResponseRelay implements BodySink {
  phase: ResponsePhase = 'head';
  /** Any byte (a 1xx, or the head) has gone to the client: a second status line would corrupt it. */
  clientWritten = false;
  /** The backend sent bytes after the response: its connection is out of step, never reuse it. */
  outOfStep = false;
  /** Decided as the head goes out: the client connection may carry another request. */
  keepClient = false;
  head: ResponseHead | undefined;
  /** Payload bytes sent to the client (nginx's $body_bytes_sent). */
  bodyBytes = 0;
  private pending: Buffer = EMPTY;
  private decoder: BodyDecoder | undefined;
  private clientFraming: Framing = { kind: 'none' };

  constructor(
    private readonly client: net.Socket,
    private readonly request: RequestHead,
    private readonly limits: HeadLimits,
    private readonly events: RelayEvents,
    /** Records bytes queued in user space on the client socket. */
    private readonly onBuffered: (bytes: number) => void,
  ) {}

  /** Bytes from the backend. Throws HttpError for a malformed response. */
  push(chunk: Buffer): void {
    if (this.phase === 'body') return this.relayBody(chunk);
    if (this.phase === 'complete') {
      if (chunk.length > 0) this.outOfStep = true;
      return;
    }
    this.pending = this.pending.length > 0 ? Buffer.concat([this.pending, chunk]) : chunk;
    for (;;) {
      const parsed = parseResponseHead(this.pending, this.limits);
      if (!parsed) return;
      const { head } = parsed;
      const rest = this.pending.subarray(parsed.length);
      this.pending = EMPTY;
      if (head.status === 101) return this.events.switchProtocols(head, rest);
      if (head.status >= 200) return this.startBody(head, rest);
      // 100 Continue and friends go straight to the client; the real response follows.
      this.write(clientResponseHead(head, { kind: 'none' }, false));
      this.pending = rest;
    }
  }

  /** The backend sent FIN. Returns true if that completed the response (a close-delimited body). */
  backendEnded(): boolean {
    if (this.phase !== 'body' || this.decoder!.framing.kind !== 'close') return false;
    this.decoder!.done = true;
    this.finish();
    return true;
  }

  /** Whether the backend connection may carry another request after this response. */
  get backendReusable(): boolean {
    const head = this.head!;
    return (
      this.decoder!.framing.kind !== 'close' &&
      head.version === '1.1' &&
      !headerTokens(head, 'connection').includes('close') &&
      !this.outOfStep
    );
  }

  /** Bytes received of a head not yet complete (a stale pooled socket has none). */
  get partialHead(): boolean {
    return this.pending.length > 0;
  }

  write(data: Buffer): boolean {
    this.clientWritten = true;
    const ok = this.client.write(data);
    this.onBuffered(this.client.writableLength);
    return ok;
  }

  private startBody(head: ResponseHead, rest: Buffer): void {
    const framing = responseFraming(head, this.request.method);
    this.head = head;
    this.decoder = new BodyDecoder(framing, 502);
    // A body that runs until close is re-chunked for HTTP/1.1 clients, so their connection survives.
    const http11 = this.request.version === '1.1';
    this.clientFraming =
      framing.kind === 'chunked' || framing.kind === 'close' ? (http11 ? { kind: 'chunked' } : { kind: 'close' }) : framing;
    // Decided now, as the head goes out: a shutdown that began meanwhile says Connection: close.
    this.keepClient = this.events.keepAlive() && this.clientFraming.kind !== 'close';
    this.phase = 'body';
    this.client.cork(); // head and first body bytes leave together
    this.write(clientResponseHead(head, this.clientFraming, !this.keepClient));
    this.relayBody(rest);
    this.client.uncork();
  }

  private relayBody(chunk: Buffer): void {
    const rest = this.decoder!.push(chunk, this);
    if (rest === undefined) return;
    if (rest.length > 0) this.outOfStep = true;
    this.finish();
  }

  /** A piece of the body's payload, from the decoder. It is never empty: as a chunk, "0\r\n\r\n" would mean the end. */
  bodyData(data: Buffer): void {
    this.bodyBytes += data.length;
    let ok = true;
    if (this.clientFraming.kind === 'chunked') for (const part of encodeChunk(data)) ok = this.write(part) && ok;
    else ok = this.write(data);
    if (!ok) this.events.clientFull();
  }

  private finish(): void {
    if (this.clientFraming.kind === 'chunked') this.write(LAST_CHUNK);
    this.phase = 'complete';
  }
}
