// The access log: one line per request in nginx's `combined` format, then the upstream's
// address, status and response time and the whole request's time, as nginx logs them with
//   log_format upstream '$remote_addr - - [$time_local] "$request" $status $body_bytes_sent '
//                       '"$http_referer" "$http_user_agent" $upstream_addr $upstream_status '
//                       '$upstream_response_time $request_time';
// and last HAProxy's termination state: who ended the exchange and in which phase ("--": normally).
// Writing never blocks the event loop (the stream writes in the background), and what waits
// to be written is bounded: past MAX_QUEUED bytes, lines are dropped and counted instead.
import { createWriteStream } from 'node:fs';
import type { Writable } from 'node:stream';
import { headerValues, type RequestHead } from '../http/parser.ts';

/** Bytes the log may hold in memory while the disk or the pipe catches up. */
export const MAX_QUEUED = 1024 * 1024;

export interface AccessRecord {
  clientIp: string;
  /** When the request began (ms since the epoch). */
  start: number;
  requestLine: string;
  status: number;
  bodyBytes: number;
  referer: string | undefined;
  userAgent: string | undefined;
  /** Each backend tried, in order, with its status (or 502/504 for a failed attempt) and seconds. */
  upstreams: Array<{ address: string; status: number; seconds: number }>;
  /** Seconds from the first byte of the request to the last byte of the response. */
  requestSeconds: number;
  /** HAProxy's termination state: who ended the exchange, in which phase ("--": normally). */
  termination: string;
  /** $ssl_protocol $ssl_cipher, on a TLS connection when the operator asked for them. */
  tls?: string;
}

/** What a connection writes its lines through: the log, or a view of it that adds fields (TLS). */
export type AccessLogWriter = Pick<AccessLog, 'write'>;

/**
 * A request's line; `head` is absent for a request refused before its head could be read, and
 * `requestLine` then says what was asked, if the request line itself was valid.
 */
export function accessRecord(
  clientIp: string,
  head: RequestHead | undefined,
  status: number,
  bodyBytes: number,
  upstreams: AccessRecord['upstreams'],
  requestSeconds: number,
  termination: string,
  requestLine = '-',
): AccessRecord {
  return {
    clientIp,
    start: Date.now() - requestSeconds * 1000,
    requestLine: head ? `${head.method} ${head.target} HTTP/${head.version}` : requestLine,
    status,
    bodyBytes,
    referer: head && headerValues(head, 'referer')[0],
    userAgent: head && headerValues(head, 'user-agent')[0],
    upstreams,
    requestSeconds,
    termination,
  };
}

export class AccessLog {
  /** Lines dropped because MAX_QUEUED bytes were already waiting. */
  dropped = 0;
  private readonly out: Writable;

  private closed: Promise<void> | undefined;

  /** target: a file (appended to), "-" for standard output, or any stream. */
  constructor(target: string | Writable, private readonly onError: (message: string) => void) {
    // Not process.stdout for "-": on Linux its writes to a pipe are synchronous, and a slow
    // reader would stall the event loop. A file stream over fd 1 writes from libuv's threads.
    this.out =
      target === '-'
        ? createWriteStream('/dev/stdout', { fd: 1, autoClose: false })
        : typeof target === 'string'
          ? createWriteStream(target, { flags: 'a' })
          : target;
    this.out.on('error', (err) => this.onError(`access log: ${err.message}`));
  }

  write(record: AccessRecord): void {
    if (this.out.writableLength > MAX_QUEUED) {
      this.dropped++;
      return;
    }
    this.out.write(formatLine(record));
  }

  /** Resolves once every line has been handed to the file. */
  close(): Promise<void> {
    this.closed ??= new Promise((resolve) => this.out.end(resolve));
    return this.closed;
  }
}

/** The time in brackets is when the line is written, as nginx's $time_local: lines stay in order. */
export function formatLine(r: AccessRecord, now = new Date()): string {
  const dash = (values: string[]) => (values.length > 0 ? values.join(', ') : '-');
  return (
    `${r.clientIp} - - [${timeLocal(now)}] "${escape(r.requestLine)}" ${r.status} ${r.bodyBytes} ` +
    `"${escape(r.referer ?? '-')}" "${escape(r.userAgent ?? '-')}" ` +
    `${dash(r.upstreams.map((u) => u.address))} ${dash(r.upstreams.map((u) => String(u.status)))} ` +
    `${dash(r.upstreams.map((u) => u.seconds.toFixed(3)))} ${r.requestSeconds.toFixed(3)} ${r.termination}${r.tls === undefined ? '' : ` ${r.tls}`}\n`
  );
}

const MONTHS = ['Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sep', 'Oct', 'Nov', 'Dec'];
const two = (n: number) => String(n).padStart(2, '0');

/** nginx's $time_local: 27/Nov/2026:15:04:05 +0000. */
export function timeLocal(d: Date): string {
  const offset = -d.getTimezoneOffset();
  const sign = offset >= 0 ? '+' : '-';
  const zone = `${sign}${two(Math.floor(Math.abs(offset) / 60))}${two(Math.abs(offset) % 60)}`;
  return `${two(d.getDate())}/${MONTHS[d.getMonth()]}/${d.getFullYear()}:${two(d.getHours())}:${two(d.getMinutes())}:${two(d.getSeconds())} ${zone}`;
}

/** As nginx escapes variables in logs: '"', '\' and bytes outside printable ASCII as \xHH. */
function escape(text: string): string {
  return text.replace(/["\\\x00-\x1f\x7f-\xff]/g, (c) => `\\x${c.charCodeAt(0).toString(16).toUpperCase().padStart(2, '0')}`);
}
