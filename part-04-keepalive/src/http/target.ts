// Request targets and Host (RFC 9112 3.2, RFC 3986 3.2): the forms a proxy accepts, the authority
// it routes by, and the origin-form it sends on.
import { isIPv6 } from 'node:net';
import { HttpError } from './errors.ts';

// Visible ASCII but '#': what browsers send unencoded ('|', '{', '"', '<', '\') passes, as in nginx
// and llhttp; controls, space, DEL and bytes over 0x7e do not. Strictness is for framing.
const TARGET_CHARS = /^[\x21\x22\x24-\x7e]+$/;
const BAD_ESCAPE = /%(?![0-9A-Fa-f]{2})/;
// "http://" or "https://", authority, then a path-abempty and query (RFC 9112 3.2.2). Other schemes
// have no place at a reverse proxy, and nginx refuses them too.
const ABSOLUTE_FORM = /^https?:\/\/([^/?]*)(.*)$/i;
// reg-name (RFC 3986 3.2.2) but ',': a comma is how two Host fields look once folded into one.
const REG_NAME = /^(?:[A-Za-z0-9\-._~!$&'()*+;=]|%[0-9A-Fa-f]{2})+$/;
const IP_FUTURE = /^v[0-9A-Fa-f]+\.[A-Za-z0-9\-._~!$&'()*+,;=:]+$/;
const PORT = /^\d{0,5}$/;

/**
 * Checks a request target (origin-form "/p?q", absolute-form "http://a/p?q", or "*" for OPTIONS).
 * Returns the authority of an absolute-form target, which then stands in for Host.
 */
export function checkTarget(method: string, target: string): string | undefined {
  if (!TARGET_CHARS.test(target)) throw new HttpError(400, 'invalid request target');
  if (target === '*') {
    if (method !== 'OPTIONS') throw new HttpError(400, 'the target "*" is for OPTIONS only');
    return undefined;
  }
  let path = target;
  let authority: string | undefined;
  if (!target.startsWith('/')) {
    const absolute = ABSOLUTE_FORM.exec(target);
    if (!absolute) throw new HttpError(400, 'request target must start with "/", be "*", or be an absolute URI');
    authority = absolute[1]!;
    path = absolute[2]!;
    checkAuthority(authority, 'request target');
  }
  // The path's escapes must be whole; the query is the backend's to read, as nginx leaves it.
  const query = path.indexOf('?');
  if (BAD_ESCAPE.test(query === -1 ? path : path.slice(0, query))) throw new HttpError(400, 'malformed %-escape in the path');
  return authority;
}

/** host [":" port], where host is a reg-name, an IPv4 address or a bracketed IP literal. */
export function checkAuthority(value: string, where: string): void {
  let host = value;
  let port: string | undefined;
  if (value.startsWith('[')) {
    const close = value.indexOf(']');
    const literal = close === -1 ? '' : value.slice(1, close);
    if (!isIPv6(literal) && !IP_FUTURE.test(literal)) throw invalid(value, where);
    const after = value.slice(close + 1);
    if (after !== '' && !after.startsWith(':')) throw invalid(value, where);
    if (after !== '') port = after.slice(1);
  } else {
    const colon = value.indexOf(':');
    if (colon !== -1) [host, port] = [value.slice(0, colon), value.slice(colon + 1)];
    if (!REG_NAME.test(host)) throw invalid(value, where);
  }
  if (port !== undefined && (!PORT.test(port) || Number(port) > 65535)) throw invalid(value, where);
}

function invalid(value: string, where: string): HttpError {
  return new HttpError(400, `invalid host ${JSON.stringify(value.slice(0, 80))} in the ${where}`);
}

/** The target as a backend gets it: origin-form, as nginx sends ("OPTIONS http://a" is "OPTIONS *"). */
export function originForm(method: string, target: string): string {
  if (target.startsWith('/') || target === '*') return target;
  const rest = ABSOLUTE_FORM.exec(target)?.[2] ?? '';
  if (rest === '') return method === 'OPTIONS' ? '*' : '/';
  return rest.startsWith('?') ? `/${rest}` : rest;
}
