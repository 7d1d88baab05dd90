// What a proxy changes in the heads it forwards: hop-by-hop fields out, forwarding fields in,
// and framing fields of our own.
import type { Framing } from './body.ts';
import { headerTokens, headerValues, type Fields, type Header, type RequestHead, type ResponseHead } from './parser.ts';
import { originForm } from './target.ts';

/** Fields that describe one connection, never the message (RFC 9110 7.6.1). */
const HOP_BY_HOP = new Set(['connection', 'keep-alive', 'proxy-connection', 'te', 'trailer', 'transfer-encoding', 'upgrade']);

export const VIA = '1.1 lb-from-scratch';
// Fields we replace rather than pass on.
const FORWARDING = new Set(['x-forwarded-for', 'x-forwarded-proto', 'x-forwarded-host', 'via']);
const VIA_FIELD = new Set(['via']);

/**
 * The Upgrade protocols a request asks for (Connection: upgrade + Upgrade: x), if any. h2c is left
 * out, as HAProxy does: this proxy does not speak HTTP/2, so a backend must not switch to it.
 */
export function upgradeRequested(head: RequestHead): string | undefined {
  const upgrade = headerValues(head, 'upgrade')[0];
  if (upgrade === undefined || !headerTokens(head, 'connection').includes('upgrade')) return undefined;
  const offered = upgrade.split(',').map((p) => p.replace(/^[ \t]+|[ \t]+$/g, '')).filter((p) => p !== '' && !/^h2c$/i.test(p));
  return offered.length > 0 ? offered.join(', ') : undefined;
}

/** The request head we send to a backend: always HTTP/1.1, keep-alive, with forwarding fields. */
export function backendRequestHead(
  head: RequestHead,
  clientIp: string,
  framing: Framing,
  upgrade: string | undefined,
  backendName: string,
  scheme: 'http' | 'https' = 'http',
): string {
  const hosts = headerValues(head, 'host');
  let text = `${head.method} ${originForm(head.method, head.target)} HTTP/1.1\r\n`;
  // HTTP/1.0 allows a request without Host; the HTTP/1.1 request we send must have one.
  if (hosts.length === 0) text += `host: ${backendName}\r\n`;
  text += endToEnd(head, FORWARDING);
  text += `x-forwarded-for: ${listWith(headerValues(head, 'x-forwarded-for'), clientIp)}\r\n`;
  text += `x-forwarded-proto: ${scheme}\r\n`;
  if (hosts.length > 0) text += `x-forwarded-host: ${hosts[0]}\r\n`;
  text += `via: ${listWith(headerValues(head, 'via'), VIA)}\r\n`;
  // Content-Length stays as received; a chunked body is re-chunked by us.
  if (framing.kind === 'chunked') text += 'transfer-encoding: chunked\r\n';
  if (upgrade !== undefined) text += `connection: upgrade\r\nupgrade: ${upgrade}\r\n`;
  return `${text}\r\n`;
}

/**
 * The response head we send to the client. `framing` is how we frame the body to the client,
 * which may differ from the backend's (a close-delimited body is re-chunked for HTTP/1.1).
 */
export function clientResponseHead(head: ResponseHead, framing: Framing, close: boolean): string {
  let text = `HTTP/1.1 ${head.status} ${head.reason}\r\n`;
  // A 101 keeps its Connection/Upgrade fields: they are what the client asked for.
  if (head.status === 101) {
    for (let i = 0; i < head.headers.length; i++) if (head.lower[i] !== 'via') text += fieldLine(head.headers[i]!);
  } else text += endToEnd(head, VIA_FIELD);
  text += `via: ${listWith(headerValues(head, 'via'), VIA)}\r\n`;
  if (framing.kind === 'chunked') text += 'transfer-encoding: chunked\r\n';
  if (close) text += 'connection: close\r\n';
  return `${text}\r\n`;
}

/** The field lines to pass on: hop-by-hop fields and every field the Connection header names are dropped. */
function endToEnd(head: Fields, alsoDrop?: Set<string>): string {
  const named = headerTokens(head, 'connection');
  let text = '';
  for (let i = 0; i < head.headers.length; i++) {
    const lower = head.lower[i]!;
    if (!HOP_BY_HOP.has(lower) && !named.includes(lower) && !alsoDrop?.has(lower)) text += fieldLine(head.headers[i]!);
  }
  return text;
}

function fieldLine(field: Header): string {
  return `${field[0]}: ${field[1]}\r\n`;
}

/** A received list field's values with ours added after them (X-Forwarded-For, Via). */
function listWith(received: readonly string[], ours: string): string {
  return received.length === 0 ? ours : `${received.join(', ')}, ${ours}`;
}
