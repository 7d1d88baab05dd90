// How an exchange ended: one typed value that every ending builds and Exchange.finish() acts on,
// as nginx's ngx_http_upstream_finalize_request() takes a result code.

/** Who ended it: nobody (it ran to its end), the client, the backend, the proxy, or our own resources. */
export type EndedBy = 'nobody' | 'client' | 'backend' | 'proxy' | 'resource';

/**
 * Where the exchange was when it ended:
 * request: the request body was still coming in.
 * connect: no backend connection was up yet.
 * head: the request was sent; the response head had not come.
 * body: the response was being relayed.
 * tunnel: the backend switched protocols (101) and the two sockets became a tunnel.
 */
export type EndedIn = 'request' | 'connect' | 'head' | 'body' | 'tunnel';

export interface Outcome {
  by: EndedBy;
  in: EndedIn;
  /** What the client got: the backend's status, one of ours, or 499 when it left first. */
  status: number | undefined;
  /** Why, in words, for the error log ('' for a normal end). */
  reason: string;
  /** A time limit ran out (HAProxy writes the first character in lower case). */
  timedOut: boolean;
}

/**
 * What one attempt says about its backend's health (nginx's peer.free() state): it served, it failed
 * and why (a timeout logs as 504 in the access log, anything else as 502), or nobody's fault.
 */
export type Verdict = { is: 'served' } | { is: 'failed'; reason: string; timedOut: boolean } | { is: 'neutral' };

export const SERVED: Verdict = { is: 'served' };
export const NEUTRAL: Verdict = { is: 'neutral' };

const WHO: Record<EndedBy, string> = { nobody: '-', client: 'C', backend: 'S', proxy: 'P', resource: 'R' };
const WHERE: Record<EndedIn, string> = { request: 'R', connect: 'C', head: 'H', body: 'D', tunnel: '-' };

/**
 * HAProxy's termination state, two characters: who ended it (C client, S server, P proxy,
 * R resources; c or s for a timeout), and in which phase (R request, C connect, H response
 * head, D data). "--" is a normal end.
 */
export function terminationState(outcome: Outcome): string {
  if (outcome.by === 'nobody') return '--';
  const who = WHO[outcome.by];
  return `${outcome.timedOut ? who.toLowerCase() : who}${WHERE[outcome.in]}`;
}
