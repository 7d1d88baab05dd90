// The response on its way to the client: its head read from the backend's bytes, 1xx passed on,
// its body relayed and re-framed (a body that runs until close is re-chunked for HTTP/1.1).
// A helper of the exchange with no phase of its own: the exchange's phase says which method is due.
import type net from 'node:net';
import { BodyDecoder, encodeChunk, LAST_CHUNK, type BodySink, type Framing } from '../http/body.ts';
import { clientResponseHead } from '../http/headers.ts';
import { errorBody, errorResponse } from '../http/errors.ts';
import { parseResponseHead, type HeadLimits, type ResponseHead } from '../http/parser.ts';
import type { Counters } from '../counters.ts';

const EMPTY = Buffer.alloc(0);
const NONE: Framing = { kind: 'none' };

/** What a piece of the body did: ended the response, filled the client's buffer, or neither. */
export type Relayed = 'complete' | 'client-full' | 'more';

export class ResponseRelay implements BodySink {
  /** Any byte (a 1xx, or the head) has gone to the client: a second status line would corrupt it. */
  clientWritten = false;
  /** The backend sent bytes after the response: its connection is out of step, never reuse it. */
  outOfStep = false;
  /** Payload bytes sent to the client (nginx's $body_bytes_sent). */
  bodyBytes = 0;
  private pending: Buffer = EMPTY;
  private decoder: BodyDecoder | undefined;
  private toClient: Framing = NONE;
  /** A write of the current piece found the client's buffer full. */
  private clientFull = false;

  constructor(
    private readonly client: net.Socket,
    private readonly limits: HeadLimits,
    /** Told the bytes queued in user space on the client socket. */
    private readonly counters: Counters,
  ) {}

  /**
   * Bytes from the backend before its final head. 1xx responses but 101 go straight to the client.
   * Returns the final head (or a 101) and the bytes after it, or undefined until it is complete.
   * Throws HttpError for a malformed head.
   */
  readHead(chunk: Buffer): { head: ResponseHead; rest: Buffer } | undefined {
    this.pending = this.pending.length > 0 ? Buffer.concat([this.pending, chunk]) : chunk;
    for (;;) {
      const parsed = parseResponseHead(this.pending, this.limits);
      if (!parsed) return undefined;
      const { head } = parsed;
      const rest = this.pending.subarray(parsed.length);
      this.pending = EMPTY;
      if (head.status === 101 || head.status >= 200) return { head, rest };
      // 100 Continue and friends go straight to the client; the real response follows.
      this.write(clientResponseHead(head, NONE, false));
      this.pending = rest;
    }
  }

  /** Bytes received of a head not yet complete (a stale pooled socket has none). */
  get partialHead(): boolean {
    return this.pending.length > 0;
  }

  /** Writes the head as decided (framing toward the client, whether its connection stays), then the first body bytes. */
  startBody(head: ResponseHead, fromBackend: Framing, toClient: Framing, keepClient: boolean, rest: Buffer): Relayed {
    this.decoder = new BodyDecoder(fromBackend, 502);
    this.toClient = toClient;
    this.client.cork(); // head and first body bytes leave together
    this.write(clientResponseHead(head, toClient, !keepClient));
    const relayed = this.relayBody(rest);
    this.client.uncork();
    return relayed;
  }

  /** Body bytes from the backend. Throws HttpError for a malformed body. */
  relayBody(chunk: Buffer): Relayed {
    const decoder = this.decoder;
    if (!decoder) return 'more'; // not before startBody(): the exchange's phase sees to that
    this.clientFull = false;
    const rest = decoder.push(chunk, this);
    if (rest === undefined) return this.clientFull ? 'client-full' : 'more';
    if (rest.length > 0) this.outOfStep = true;
    return this.complete();
  }

  /** A piece of the body's payload, from the decoder. It is never empty: as a chunk, "0\r\n\r\n" would mean the end. */
  bodyData(data: Buffer): void {
    this.bodyBytes += data.length;
    let ok = true;
    if (this.toClient.kind === 'chunked') for (const part of encodeChunk(data)) ok = this.write(part) && ok;
    else ok = this.write(data);
    if (!ok) this.clientFull = true;
  }

  /** The backend sent FIN. Returns whether that completed the response (a body framed by close). */
  backendEnded(): boolean {
    return this.decoder !== undefined && this.decoder.senderClosed() && this.complete() === 'complete';
  }

  /** The proxy answers for itself (an error response) instead of relaying one. */
  answer(status: number, reason: string, keepClient: boolean, toHead: boolean): void {
    if (!toHead) this.bodyBytes += errorBody(status, reason).length;
    this.write(errorResponse(status, reason, keepClient, toHead));
  }

  /** Bytes, or a head as latin1 text (written as it is: no Buffer is made for it). */
  write(data: Buffer | string): boolean {
    this.clientWritten = true;
    const ok = this.client.write(data, 'latin1');
    this.counters.buffered(this.client.writableLength);
    return ok;
  }

  private complete(): 'complete' {
    if (this.toClient.kind === 'chunked') this.write(LAST_CHUNK);
    return 'complete';
  }
}
