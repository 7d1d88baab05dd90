// The request body on its way to a backend: held while no backend is connected, then decoded,
// counted against clientMaxBodySize and re-framed as it streams. A helper of the exchange with no
// phase of its own: the exchange's phase says whether bytes are held or streamed.
import type net from 'node:net';
import { BodyDecoder, encodeChunk, LAST_CHUNK, type Framing } from '../http/body.ts';
import { HttpError } from '../http/errors.ts';

export class RequestBody {
  /** Some body bytes have gone to a backend: the request can no longer be replayed elsewhere. */
  started = false;
  private readonly decoder: BodyDecoder;
  private held: Buffer[] = [];
  private bytes = 0;

  constructor(
    readonly framing: Framing,
    /** clientMaxBodySize; 0 for no limit. */
    private readonly maxBytes: number,
  ) {
    this.decoder = new BodyDecoder(framing, 400);
  }

  /** Every byte of the body has been read (a bodiless request's, from the start). */
  get complete(): boolean {
    return this.decoder.done;
  }

  /** Keeps a piece while no backend is connected, so a failed connect loses nothing. */
  hold(chunk: Buffer): void {
    this.held.push(chunk);
  }

  /** Whatever is held, as one piece (the exchange forwards it, then every piece as it comes). */
  takeHeld(): Buffer | undefined {
    return this.held.length > 0 ? Buffer.concat(this.held.splice(0)) : undefined;
  }

  /**
   * Decodes a piece and writes its payload to the backend, re-chunked if it came chunked.
   * Returns whether the backend's buffer has room, and the bytes after the body once it is
   * complete; or the HttpError for a malformed or oversized body.
   */
  forward(chunk: Buffer, backend: net.Socket): { ok: boolean; rest?: Buffer } | HttpError {
    let ok = true;
    const chunked = this.framing.kind === 'chunked';
    let rest;
    try {
      rest = this.decoder.push(chunk, (data) => {
        this.bytes += data.length;
        // Content-Length was checked before we began; a chunked body is counted as it comes.
        if (this.maxBytes > 0 && this.bytes > this.maxBytes) throw new HttpError(413, `request body larger than ${this.maxBytes} bytes`);
        this.started = true;
        ok = (chunked ? encodeChunk(data).map((part) => backend.write(part)).every(Boolean) : backend.write(data)) && ok;
      });
    } catch (err) {
      if (err instanceof HttpError) return err;
      throw err;
    }
    if (rest === undefined) return { ok };
    if (chunked) backend.write(LAST_CHUNK);
    return { ok, rest };
  }
}
