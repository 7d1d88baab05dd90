// The request body on its way to a backend: held while no backend is connected, then decoded,
// counted against clientMaxBodySize and re-framed as it streams.
import type net from 'node:net';
import { BodyDecoder, encodeChunk, LAST_CHUNK, type BodySink, type Framing } from './http/body.ts';
import { HttpError } from './http/errors.ts';

/**
 * held: no backend connection yet; what the client sends waits here, so a failed connect
 *   loses nothing.
 * streaming: connected; each piece is decoded and written to the backend as it comes.
 * forwarded: every byte of the request has been written to the backend.
 */
export type RequestPhase = 'held' | 'streaming' | 'forwarded';

export class RequestBody implements BodySink {
  phase: RequestPhase = 'held';
  /** Some body bytes have gone to a backend: the request can no longer be replayed elsewhere. */
  started = false;
  private readonly decoder: BodyDecoder;
  private held: Buffer[] = [];
  private bytes = 0;
  /** Where forward() is writing, and whether every write so far went through. */
  private backend: net.Socket | undefined;
  private writesOk = true;

  constructor(
    readonly framing: Framing,
    /** clientMaxBodySize; 0 for no limit. */
    private readonly maxBytes: number,
  ) {
    this.decoder = new BodyDecoder(framing, 400);
  }

  /** A bodiless request is forwarded as soon as its head is. */
  get empty(): boolean {
    return this.decoder.done;
  }

  /** Every byte of the request has been written to the backend. */
  isForwarded(): boolean {
    return this.phase === 'forwarded';
  }

  hold(chunk: Buffer): void {
    this.held.push(chunk);
  }

  /** Whatever is held, as one piece, and from now on every piece straight to `backend`. */
  startStreaming(): Buffer | undefined {
    this.phase = 'streaming';
    return this.held.length > 0 ? Buffer.concat(this.held.splice(0)) : undefined;
  }

  /**
   * Decodes a piece and writes its payload to the backend, re-chunked if it came chunked.
   * Returns false when the backend's buffer is full, and the bytes after the body once it is
   * complete (phase 'forwarded'). Throws HttpError for a malformed or oversized body.
   */
  forward(chunk: Buffer, backend: net.Socket): { ok: boolean; rest?: Buffer } {
    this.backend = backend;
    this.writesOk = true;
    const rest = this.decoder.push(chunk, this);
    const ok = this.writesOk;
    if (rest === undefined) return { ok };
    if (this.framing.kind === 'chunked') backend.write(LAST_CHUNK);
    this.phase = 'forwarded';
    return { ok, rest };
  }

  /** A piece of payload from the decoder, on its way to the backend. */
  bodyData(data: Buffer): void {
    this.bytes += data.length;
    // Content-Length was checked before we began; a chunked body is counted as it comes.
    if (this.maxBytes > 0 && this.bytes > this.maxBytes) throw new HttpError(413, `request body larger than ${this.maxBytes} bytes`);
    this.started = true;
    if (this.framing.kind === 'chunked') for (const part of encodeChunk(data)) this.writesOk = this.backend!.write(part) && this.writesOk;
    else this.writesOk = this.backend!.write(data) && this.writesOk;
  }
}
