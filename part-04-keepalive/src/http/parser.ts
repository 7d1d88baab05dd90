// A strict HTTP/1.1 message-head parser (RFC 9112). It reads heads from bytes that arrive in
// any pieces, and rejects anything ambiguous instead of guessing.
import { HttpError } from './errors.ts';
import { checkAuthority, checkTarget } from './target.ts';

export type Header = [name: string, value: string];

/** Header fields as received, with each name lower-cased once and an index by name. */
export interface Fields {
  headers: Header[];
  /** headers[i]'s name, lower-cased (computed once, in the parse). */
  lower: string[];
  /** Lower-cased name -> its values, in order. */
  byName: Map<string, string[]>;
}

export interface RequestHead extends Fields {
  method: string;
  target: string;
  version: '1.0' | '1.1';
}

export interface ResponseHead extends Fields {
  version: '1.0' | '1.1';
  status: number;
  reason: string;
}

export interface HeadLimits {
  /** Longest request line (414 beyond it). */
  requestLineBytes: number;
  /** Largest header section, request line included (431 beyond it). */
  headerBytes: number;
  /** Most header fields (431 beyond it). */
  headerCount: number;
}

export const DEFAULT_LIMITS: HeadLimits = { requestLineBytes: 8192, headerBytes: 16384, headerCount: 100 };

// tchar from RFC 9110 5.6.2: the characters allowed in methods and field names.
const TOKEN = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/;
// Field values: visible characters, spaces, tabs and obs-text; never CTLs such as NUL, CR, LF.
const FIELD_VALUE = /^[\t\x20-\x7e\x80-\xff]*$/;
const CRLFCRLF = Buffer.from('\r\n\r\n');
/**
 * Looks for a complete request head at the start of buf. Returns the head and its length in
 * bytes, or undefined if more bytes are needed. Throws HttpError for anything malformed.
 */
export function parseRequestHead(buf: Buffer, limits: HeadLimits = DEFAULT_LIMITS): { head: RequestHead; length: number } | undefined {
  // A few empty lines before a request are allowed (RFC 9112 2.2): some clients send a CRLF after a body.
  let start = 0;
  while (buf[start] === 0x0d && buf[start + 1] === 0x0a) start += 2;
  if (buf[start] === 0x0d && start + 1 === buf.length) return undefined;

  const lineEnd = buf.indexOf('\r\n', start);
  if (lineEnd === -1) {
    if (buf.length - start > limits.requestLineBytes) throw new HttpError(414, 'request line too long');
    return undefined;
  }
  if (lineEnd - start > limits.requestLineBytes) throw new HttpError(414, 'request line too long');

  const end = findHeadEnd(buf, lineEnd, limits);
  if (end === undefined) return undefined;
  const lines = splitLines(buf.toString('latin1', start, end - 4));
  const { authority, ...line } = requestLine(lines[0]!);
  const head = { ...line, ...fieldLines(lines, limits) };
  checkHost(head, authority);
  checkConnectionOptions(head, REQUEST_FRAMING_OR_ROUTING, 400);
  return { head, length: end };
}

/** The same for a response head from a backend (errors become 502 at the caller). */
export function parseResponseHead(buf: Buffer, limits: HeadLimits = DEFAULT_LIMITS): { head: ResponseHead; length: number } | undefined {
  const firstLineEnd = buf.indexOf('\r\n');
  if (firstLineEnd === -1) {
    if (buf.length > limits.headerBytes) throw new HttpError(502, 'response status line too long');
    return undefined;
  }
  const end = findHeadEnd(buf, firstLineEnd, limits);
  if (end === undefined) return undefined;
  const lines = splitLines(buf.toString('latin1', 0, end - 4));
  // status-code SP reason: "2000 OK" and "200OK" are refused, a bare "200" is accepted, as by llhttp.
  // Status codes run from 100 (RFC 9110 15): "000" would pass for an interim 1xx and desync the client.
  const match = /^HTTP\/1\.([01]) ([1-9]\d\d)(?: ([\t\x20-\x7e\x80-\xff]*))?$/.exec(lines[0]!);
  if (!match) throw new HttpError(502, `bad status line ${JSON.stringify(lines[0]!.slice(0, 80))}`);
  const head: ResponseHead = { version: match[1] === '0' ? '1.0' : '1.1', status: Number(match[2]), reason: match[3] ?? '', ...fieldLines(lines, limits) };
  checkConnectionOptions(head, RESPONSE_FRAMING, 502);
  return { head, length: end };
}

/** Where the head ends (just past CRLFCRLF), or undefined if not arrived yet; enforces the size limit. */
function findHeadEnd(buf: Buffer, from: number, limits: HeadLimits): number | undefined {
  // Search from just before the first line's CRLF, so a head with no fields ("...\r\n\r\n") is found too.
  const at = buf.indexOf(CRLFCRLF, from);
  if (at === -1) {
    if (buf.length > limits.headerBytes) throw new HttpError(431, 'header section too large');
    return undefined;
  }
  if (at + 4 > limits.headerBytes) throw new HttpError(431, 'header section too large');
  return at + 4;
}

/** Splits on CRLF; a bare CR or LF anywhere else is an error, not a line break. */
function splitLines(text: string): string[] {
  const lines = text.split('\r\n');
  for (const line of lines) {
    if (line.includes('\r') || line.includes('\n')) throw new HttpError(400, 'bare CR or LF in head');
  }
  return lines;
}

function requestLine(line: string): Pick<RequestHead, 'method' | 'target' | 'version'> & { authority: string | undefined } {
  const parts = line.split(' ');
  if (parts.length !== 3) throw new HttpError(400, 'request line must be METHOD SP TARGET SP VERSION');
  const [method, target, version] = parts as [string, string, string];
  // Any token is a method (RFC 9110 9.1): framing never depends on it, so the backend may judge it.
  if (!TOKEN.test(method)) throw new HttpError(400, 'invalid method');
  const authority = checkTarget(method, target);
  if (method === 'CONNECT') throw new HttpError(501, 'CONNECT is not supported by this proxy');
  if (version === 'HTTP/1.1' || version === 'HTTP/1.0') return { method, target, version: version === 'HTTP/1.1' ? '1.1' : '1.0', authority };
  if (/^HTTP\/\d\.\d$/.test(version)) throw new HttpError(505, `${version} is not supported`);
  throw new HttpError(400, 'invalid HTTP version');
}

/** The field lines (lines[1..]), checked, in one pass that also builds the index by name. */
const FRAMING_FIELD = /^(content-length|transfer-encoding)$/i;

function fieldLines(lines: string[], limits: HeadLimits): Fields {
  if (lines.length - 1 > limits.headerCount) throw new HttpError(431, `more than ${limits.headerCount} header fields`);
  const fields: Fields = { headers: [], lower: [], byName: new Map() };
  for (let i = 1; i < lines.length; i++) {
    const line = lines[i]!;
    if (line.startsWith(' ') || line.startsWith('\t')) throw new HttpError(400, 'obsolete line folding');
    const colon = line.indexOf(':');
    if (colon <= 0) throw new HttpError(400, 'header line without a name and colon');
    const name = line.slice(0, colon);
    // "Host : x" is refused: whitespace before the colon has been used to smuggle requests.
    if (!TOKEN.test(name)) throw new HttpError(400, `invalid header name ${JSON.stringify(name)}`);
    // Only SP and HTAB are optional whitespace (RFC 9110 5.6.3); trim() would also eat \f, \v and U+00A0.
    const value = line.slice(colon + 1).replace(/^[ \t]+|[ \t]+$/g, '');
    if (!FIELD_VALUE.test(value)) throw new HttpError(400, `invalid character in ${name}`);
    // llhttp refuses a tab around these two; reading framing otherwise than the backend does is how smuggling starts.
    if (FRAMING_FIELD.test(name) && line.includes('\t', colon)) throw new HttpError(400, `tab in ${name}`);
    const lower = name.toLowerCase();
    fields.headers.push([name, value]);
    fields.lower.push(lower);
    const values = fields.byName.get(lower);
    if (values) values.push(value);
    else fields.byName.set(lower, [value]);
  }
  return fields;
}

/** One valid Host (RFC 9112 3.2); with an absolute-form target, its authority replaces the Host (3.2.2). */
function checkHost(head: RequestHead, authority: string | undefined): void {
  const hosts = headerValues(head, 'host');
  if (hosts.length > 1) throw new HttpError(400, 'more than one Host header');
  if (head.version === '1.1' && hosts.length === 0) throw new HttpError(400, 'HTTP/1.1 request without Host');
  if (hosts.length === 1) checkAuthority(hosts[0]!, 'Host header');
  if (authority === undefined) return;
  const at = head.lower.indexOf('host');
  if (at === -1) {
    head.headers.push(['Host', authority]);
    head.lower.push('host');
  } else head.headers[at] = ['Host', authority];
  head.byName.set('host', [authority]);
}

// A Connection option names fields to drop at the next hop. Dropping the ones that frame or route
// the message would forward its body with no length (the backend reads it as the next request).
const REQUEST_FRAMING_OR_ROUTING = ['content-length', 'transfer-encoding', 'host'];
const RESPONSE_FRAMING = ['content-length', 'transfer-encoding'];

function checkConnectionOptions(head: Fields, protectedFields: string[], status: number): void {
  for (const option of headerTokens(head, 'connection')) {
    if (protectedFields.includes(option)) throw new HttpError(status, `Connection names ${option}, which a proxy must not drop`);
  }
}

const NONE: readonly string[] = [];
const OWS_AROUND = /^[ \t]+|[ \t]+$/g;

/** All values of a header (name in lower case). */
export function headerValues(head: Fields, name: string): readonly string[] {
  return head.byName.get(name) ?? NONE;
}

/** Comma-separated list items across all fields of that name, lower-cased, empties dropped. */
// Items are trimmed of SP and HTAB only (RFC 9110 5.6.3): trim() would make "\xa0chunked" read as chunked.
export function headerTokens(head: Fields, name: string): string[] {
  const tokens: string[] = [];
  for (const value of headerValues(head, name)) {
    for (const item of value.split(',')) {
      const token = item.replace(OWS_AROUND, '').toLowerCase();
      if (token !== '') tokens.push(token);
    }
  }
  return tokens;
}
