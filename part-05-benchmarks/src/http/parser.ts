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
  // One string for the whole head (its last CRLF included, so every line ends in one), read once.
  const text = buf.toString('latin1', start, end - 2);
  const { method, target, version, authority } = requestLine(text.slice(0, lineEnd - start));
  try {
    const { headers, lower, byName } = fieldLines(text, lineEnd - start + 2, limits);
    // One literal of one shape: every head has the same hidden class, so reading it stays fast.
    const head: RequestHead = { method, target, version, headers, lower, byName };
    checkHost(head, authority);
    checkConnectionOptions(head, REQUEST_FRAMING_OR_ROUTING, 400);
    return { head, length: end };
  } catch (err) {
    // The request line was good: the access log can still say what was asked.
    if (err instanceof HttpError) err.requestLine = `${method} ${target} HTTP/${version}`;
    throw err;
  }
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
  const text = buf.toString('latin1', 0, end - 2);
  const statusLine = text.slice(0, firstLineEnd);
  // status-code SP reason: "2000 OK" and "200OK" are refused, a bare "200" is accepted, as by llhttp.
  const match = STATUS_LINE.exec(statusLine);
  if (!match) throw new HttpError(502, `bad status line ${JSON.stringify(statusLine.slice(0, 80))}`);
  const { headers, lower, byName } = fieldLines(text, firstLineEnd + 2, limits);
  const head: ResponseHead = { version: match[1] === '0' ? '1.0' : '1.1', status: Number(match[2]), reason: match[3] ?? '', headers, lower, byName };
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

/** A bare CR or LF is never a line break: lines end in CRLF only. */
function checkNoBareCrLf(line: string): void {
  if (line.includes('\r') || line.includes('\n')) throw new HttpError(400, 'bare CR or LF in head');
}

function requestLine(line: string): Pick<RequestHead, 'method' | 'target' | 'version'> & { authority: string | undefined } {
  checkNoBareCrLf(line);
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

// Status codes run from 100 (RFC 9110 15): "000" would pass for an interim 1xx and desync the client.
const STATUS_LINE = /^HTTP\/1\.([01]) ([1-9]\d\d)(?: ([\t\x20-\x7e\x80-\xff]*))?$/;
const SP = 0x20;
const HTAB = 0x09;

/**
 * The field lines of `text` from `pos` on, each ending in CRLF, checked in one pass that also
 * lower-cases each name once and builds the index by name.
 */
function fieldLines(text: string, pos: number, limits: HeadLimits): Fields {
  const fields: Fields = { headers: [], lower: [], byName: new Map() };
  while (pos < text.length) {
    const eol = text.indexOf('\r\n', pos);
    if (fields.headers.length === limits.headerCount) throw new HttpError(431, `more than ${limits.headerCount} header fields`);
    const first = text.charCodeAt(pos);
    if (first === SP || first === HTAB) throw new HttpError(400, 'obsolete line folding');
    const colon = text.indexOf(':', pos);
    if (colon <= pos || colon > eol) {
      checkNoBareCrLf(text.slice(pos, eol));
      throw new HttpError(400, 'header line without a name and colon');
    }
    const name = text.slice(pos, colon);
    // "Host : x" is refused: whitespace before the colon has been used to smuggle requests.
    if (!TOKEN.test(name)) {
      checkNoBareCrLf(name);
      throw new HttpError(400, `invalid header name ${JSON.stringify(name)}`);
    }
    // Only SP and HTAB are optional whitespace (RFC 9110 5.6.3); trim() would also eat \f, \v and U+00A0.
    let from = colon + 1;
    let to = eol;
    while (from < to && isOws(text.charCodeAt(from))) from++;
    while (to > from && isOws(text.charCodeAt(to - 1))) to--;
    const value = text.slice(from, to);
    // Never CTLs such as NUL, CR or LF: a bare CR or LF is refused here too.
    if (!FIELD_VALUE.test(value)) {
      checkNoBareCrLf(value); // a line break inside is no fault of this field's
      throw new HttpError(400, `invalid character in ${name}`);
    }
    const lower = name.toLowerCase();
    // llhttp refuses a tab around these two; reading framing otherwise than the backend does is how smuggling starts.
    if ((lower === 'content-length' || lower === 'transfer-encoding') && text.slice(colon, eol).includes('\t')) {
      throw new HttpError(400, `tab in ${name}`);
    }
    fields.headers.push([name, value]);
    fields.lower.push(lower);
    const values = fields.byName.get(lower);
    if (values) values.push(value);
    else fields.byName.set(lower, [value]);
    pos = eol + 2;
  }
  return fields;
}

function isOws(code: number): boolean {
  return code === SP || code === HTAB;
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
export function headerTokens(head: Fields, name: string): readonly string[] {
  const values = head.byName.get(name);
  if (values === undefined) return NONE; // the common case: nothing to split or allocate
  const tokens: string[] = [];
  for (const value of values) {
    for (const item of value.split(',')) {
      const token = item.replace(OWS_AROUND, '').toLowerCase();
      if (token !== '') tokens.push(token);
    }
  }
  return tokens;
}
