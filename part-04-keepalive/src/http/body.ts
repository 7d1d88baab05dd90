// Message bodies: how long a body is (framing, RFC 9112 section 6), a streaming decoder for
// each kind, and the chunked encoder we re-frame with.
import { HttpError } from './errors.ts';
import { headerTokens, headerValues, type RequestHead, type ResponseHead } from './parser.ts';

export type Framing =
  | { kind: 'none' } // no body at all
  | { kind: 'length'; length: number } // Content-Length
  | { kind: 'chunked' } // Transfer-Encoding: chunked
  | { kind: 'close' }; // response body runs until the backend closes (old style)

const KNOWN_CODINGS = ['chunked', 'gzip', 'x-gzip', 'deflate', 'compress', 'x-compress'];

/** How the request's body is delimited; throws for anything ambiguous. */
export function requestFraming(head: RequestHead): Framing {
  const codings = headerTokens(head, 'transfer-encoding');
  const lengths = headerValues(head, 'content-length');
  if (codings.length > 0 || headerValues(head, 'transfer-encoding').length > 0) {
    if (head.version === '1.0') throw new HttpError(400, 'Transfer-Encoding in an HTTP/1.0 request');
    if (lengths.length > 0) throw new HttpError(400, 'both Content-Length and Transfer-Encoding');
    const unknown = codings.find((c) => !KNOWN_CODINGS.includes(c));
    if (unknown !== undefined) throw new HttpError(501, `unknown transfer coding "${unknown}"`);
    if (codings.at(-1) !== 'chunked') throw new HttpError(400, 'the last transfer coding must be chunked');
    if (codings.length > 1) throw new HttpError(501, `transfer codings other than chunked: ${codings.join(', ')}`);
    return { kind: 'chunked' };
  }
  if (lengths.length > 0) return { kind: 'length', length: contentLength(lengths, 400) };
  return { kind: 'none' };
}

/** How a response's body is delimited, given the request it answers. */
export function responseFraming(head: ResponseHead, requestMethod: string): Framing {
  const lengths = headerValues(head, 'content-length');
  const codings = headerTokens(head, 'transfer-encoding');
  if (codings.length > 0 && lengths.length > 0) throw new HttpError(502, 'backend sent both Content-Length and Transfer-Encoding');
  // Even where it frames nothing (HEAD, 204, 304), a Content-Length must be one valid value (RFC 9110 8.6).
  if (requestMethod === 'HEAD' || head.status < 200 || head.status === 204 || head.status === 304) {
    if (lengths.length > 0) contentLength(lengths, 502);
    return { kind: 'none' };
  }
  if (codings.length > 0) {
    if (codings.length !== 1 || codings[0] !== 'chunked') {
      throw new HttpError(502, `backend used transfer codings this proxy does not re-frame: ${codings.join(', ')}`);
    }
    return { kind: 'chunked' };
  }
  if (lengths.length > 0) return { kind: 'length', length: contentLength(lengths, 502) };
  return { kind: 'close' };
}

function contentLength(values: readonly string[], status: number): number {
  if (values.length > 1) throw new HttpError(status, 'more than one Content-Length');
  const value = values[0]!;
  // All digits, and few enough to be exact: "+5", "5 ", "0x10", "1,1" are all refused.
  if (!/^\d{1,15}$/.test(value)) throw new HttpError(status, `invalid Content-Length "${value}"`);
  return Number(value);
}

type ChunkedState = 'size' | 'data' | 'data-crlf' | 'trailers' | 'done';
// chunk-size, then extensions ";name" or ";name=value" (token or quoted string). Whitespace (BWS)
// may stand around ";" and "=" (RFC 9112 7.1.1) and after the size, as nginx reads it: we re-chunk
// the body, so the backend never sees these lines and cannot read them otherwise.
const TOKEN = "[!#$%&'*+\\-.^_`|~0-9A-Za-z]+";
const QUOTED = '"(?:[\\t \\x21\\x23-\\x5b\\x5d-\\x7e]|\\\\[\\t \\x21-\\x7e])*"';
const BWS = '[ \\t]*';
const CHUNK_SIZE_LINE = new RegExp(`^([0-9a-fA-F]{1,15})(?:${BWS};${BWS}${TOKEN}(?:${BWS}=${BWS}(?:${TOKEN}|${QUOTED}))?)*${BWS}$`);
const TRAILER_LINE = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+:[\t\x20-\x7e\x80-\xff]*$/;
const MAX_LINE = 4096;
const MAX_TRAILERS = 16384;

/** Decodes one body from bytes that arrive in any pieces, handing out the payload bytes. */
export class BodyDecoder {
  private remaining: number;
  private chunkedState: ChunkedState = 'size';
  private pending: Buffer = Buffer.alloc(0);
  private trailerBytes = 0;
  /** The whole body has been read. */
  done: boolean;

  constructor(
    readonly framing: Framing,
    /** 400 for request bodies, 502 for response bodies. */
    private readonly errorStatus: number,
  ) {
    this.remaining = framing.kind === 'length' ? framing.length : 0;
    this.done = framing.kind === 'none' || (framing.kind === 'length' && framing.length === 0);
  }

  /** The sender closed. Returns true when that was the end of a body framed by close. */
  senderClosed(): boolean {
    if (this.framing.kind !== 'close' || this.done) return false;
    this.done = true;
    return true;
  }

  /**
   * Feeds bytes. Payload goes to onData. Returns the bytes after the body (the start of the next
   * message) once the body is complete, or undefined while it is not.
   */
  push(chunk: Buffer, onData: (data: Buffer) => void): Buffer | undefined {
    if (this.done) return chunk;
    switch (this.framing.kind) {
      case 'close':
        if (chunk.length > 0) onData(chunk); // never an empty piece: re-chunked, it would mean "the end"
        return undefined;
      case 'length': {
        const take = Math.min(this.remaining, chunk.length);
        if (take > 0) onData(chunk.subarray(0, take));
        this.remaining -= take;
        if (this.remaining > 0) return undefined;
        this.done = true;
        return chunk.subarray(take);
      }
      default:
        return this.pushChunked(chunk, onData);
    }
  }

  private pushChunked(chunk: Buffer, onData: (data: Buffer) => void): Buffer | undefined {
    const buf = this.pending.length > 0 ? Buffer.concat([this.pending, chunk]) : chunk;
    this.pending = Buffer.alloc(0);
    let i = 0;
    while (this.chunkedState !== 'done') {
      if (this.chunkedState === 'data') {
        const take = Math.min(this.remaining, buf.length - i);
        if (take === 0) return undefined;
        onData(buf.subarray(i, i + take));
        this.remaining -= take;
        i += take;
        if (this.remaining === 0) this.chunkedState = 'data-crlf';
        continue;
      }
      if (this.chunkedState === 'data-crlf') {
        if (buf.length - i < 2) return this.wait(buf, i);
        if (buf[i] !== 0x0d || buf[i + 1] !== 0x0a) throw new HttpError(this.errorStatus, 'chunk data not followed by CRLF');
        i += 2;
        this.chunkedState = 'size';
        continue;
      }
      // 'size' and 'trailers' are both line-based.
      const eol = buf.indexOf('\r\n', i);
      if (eol === -1) {
        if (buf.length - i > MAX_LINE) throw new HttpError(this.errorStatus, 'chunk line too long');
        return this.wait(buf, i);
      }
      // The same limit whether the line came in one piece or several.
      if (eol - i > MAX_LINE) throw new HttpError(this.errorStatus, 'chunk line too long');
      const line = buf.toString('latin1', i, eol);
      i = eol + 2;
      if (this.chunkedState === 'size') {
        const match = CHUNK_SIZE_LINE.exec(line);
        if (!match) throw new HttpError(this.errorStatus, `invalid chunk size line ${JSON.stringify(line.slice(0, 40))}`);
        this.remaining = parseInt(match[1]!, 16);
        this.chunkedState = this.remaining === 0 ? 'trailers' : 'data';
      } else if (line === '') {
        this.chunkedState = 'done';
      } else {
        // Trailer fields are checked like headers, then dropped (we re-frame the body).
        this.trailerBytes += line.length + 2;
        if (!TRAILER_LINE.test(line) || this.trailerBytes > MAX_TRAILERS) {
          throw new HttpError(this.errorStatus, 'invalid or oversized trailer section');
        }
      }
    }
    this.done = true;
    return buf.subarray(i);
  }

  private wait(buf: Buffer, from: number): undefined {
    this.pending = Buffer.from(buf.subarray(from));
    return undefined;
  }
}

/** One chunk of a chunked body we send. */
export function encodeChunk(data: Buffer): Buffer[] {
  return [Buffer.from(`${data.length.toString(16)}\r\n`), data, Buffer.from('\r\n')];
}

export const LAST_CHUNK = Buffer.from('0\r\n\r\n');
