// What to do after a backend let a request down: nginx's proxy_next_upstream rules, plus one
// retry for the stale-socket race. A pure function of the facts, so the rules read as a table.

/**
 * Why a backend connection failed. Only the backend's own faults count against its health;
 * 'local' is our own shortage (nginx counts neither it nor a client's faults).
 */
export type Failure = 'connect' | 'timeout' | 'reset' | 'invalid' | 'local';

/** Errors of our own process, not of the backend: out of file descriptors or local ports. */
const LOCAL_ERRORS = new Set(['EMFILE', 'ENFILE', 'EADDRNOTAVAIL', 'ENOBUFS']);

/** Why a backend socket that closed while in use failed, from its error (if it said) and whether it had connected. */
export function closeFailure(err: NodeJS.ErrnoException | undefined, connected: boolean): [Failure, string] {
  if (err?.code !== undefined && LOCAL_ERRORS.has(err.code)) return ['local', `cannot open a connection: ${err.message}`];
  return [connected ? 'reset' : 'connect', err?.message ?? 'backend closed the connection'];
}

export interface FailureFacts {
  kind: Failure;
  /** Response bytes have reached the client already. */
  clientWritten: boolean;
  /** A pooled connection that died before any answer: the backend had closed it meanwhile. */
  stale: boolean;
  staleRetried: boolean;
  /** Body bytes have left for a backend: they cannot be taken back. */
  bodySent: boolean;
  /** The request head reached the backend (the connect had succeeded). */
  requestSent: boolean;
  method: string;
  /** Another healthy backend, not yet tried, exists. */
  anotherBackend: boolean;
}

export type NextStep =
  | { do: 'cut' } // a second status line would corrupt the client's stream: close it
  | { do: 'retry'; sameBackend: boolean }
  | { do: 'answer'; status: 502 | 503 | 504 };

const IDEMPOTENT = new Set(['GET', 'HEAD', 'OPTIONS', 'PUT', 'DELETE', 'TRACE']);

export function nextStep(f: FailureFacts): NextStep {
  if (f.clientWritten) return { do: 'cut' };
  if (f.kind === 'local') return { do: 'answer', status: 503 };
  // Once, on a fresh connection to the same backend: nothing reached it, so it is safe.
  if (f.stale && !f.bodySent && !f.staleRetried) return { do: 'retry', sameBackend: true };
  // Another backend may be tried if that cannot do harm: nothing was sent (the connect failed),
  // or the request is idempotent and no body bytes were streamed away.
  const replayable = f.kind !== 'invalid' && !f.bodySent && (!f.requestSent || IDEMPOTENT.has(f.method));
  if (replayable && f.anotherBackend) return { do: 'retry', sameBackend: false };
  return { do: 'answer', status: f.kind === 'timeout' ? 504 : 502 };
}
