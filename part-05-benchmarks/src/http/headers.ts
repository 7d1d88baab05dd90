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

/** Drops hop-by-hop fields and every field the Connection header names. */
export function endToEnd(head: Fields, alsoDrop?: Set<string>): Header[] {
  const named = headerTokens(head, 'connection');
  const kept: Header[] = [];
  for (let i = 0; i < head.headers.length; i++) {
    const lower = head.lower[i]!;
    if (!HOP_BY_HOP.has(lower) && !named.includes(lower) && !alsoDrop?.has(lower)) kept.push(head.headers[i]!);
  }
  return kept;
}

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
): Buffer {
  const fields = endToEnd(head, FORWARDING);
  // HTTP/1.0 allows a request without Host; the HTTP/1.1 request we send must have one.
  if (headerValues(head, 'host').length === 0) fields.unshift(['host', backendName]);
  const priorFor = headerValues(head, 'x-forwarded-for');
  fields.push(['x-forwarded-for', [...priorFor, clientIp].join(', ')]);
  fields.push(['x-forwarded-proto', scheme]);
  const host = headerValues(head, 'host')[0];
  if (host !== undefined) fields.push(['x-forwarded-host', host]);
  appendVia(fields, head);
  // Content-Length stays as received; a chunked body is re-chunked by us.
  if (framing.kind === 'chunked') fields.push(['transfer-encoding', 'chunked']);
  if (upgrade !== undefined) fields.push(['connection', 'upgrade'], ['upgrade', upgrade]);
  return serialize(`${head.method} ${originForm(head.method, head.target)} HTTP/1.1`, fields);
}

/**
 * The response head we send to the client. `framing` is how we frame the body to the client,
 * which may differ from the backend's (a close-delimited body is re-chunked for HTTP/1.1).
 */
export function clientResponseHead(head: ResponseHead, framing: Framing, close: boolean): Buffer {
  // A 101 keeps its Connection/Upgrade fields: they are what the client asked for.
  const fields = head.status === 101 ? head.headers.filter((_, i) => head.lower[i] !== 'via') : endToEnd(head, VIA_FIELD);
  appendVia(fields, head);
  if (framing.kind === 'chunked') fields.push(['transfer-encoding', 'chunked']);
  if (close) fields.push(['connection', 'close']);
  return serialize(`HTTP/1.1 ${head.status} ${head.reason}`, fields);
}

/** Adds our Via after any received ones (the caller has left the received Via fields out). */
function appendVia(fields: Header[], original: Fields): void {
  fields.push(['via', [...headerValues(original, 'via'), VIA].join(', ')]);
}

function serialize(startLine: string, fields: Header[]): Buffer {
  let text = `${startLine}\r\n`;
  for (const [name, value] of fields) text += `${name}: ${value}\r\n`;
  return Buffer.from(`${text}\r\n`, 'latin1');
}
