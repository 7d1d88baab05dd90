// Where an exchange is. One phase for its whole life; each phase carries what exists in it, so the
// types say which phases have a backend connection or a response head.
import type { ResponseHead } from '../http/parser.ts';
import type { BackendConnection } from '../upstream/connection-pool.ts';
import type { EndedBy, EndedIn, Outcome } from './outcome.ts';

/**
 * choosing: no backend connection: about to pick one (at the start, and between attempts).
 * connecting: a new connection is being opened (connectTimeoutMs runs); body bytes wait.
 * sending: the head is written; the request body streams to the backend.
 * awaiting: the whole request is with the backend; its response head has not come (1xx pass).
 * relaying: the response head went to the client; its body streams. `requestSent` is the request
 *   side's progress: a backend may answer (a 413, an echo) before the request body is over.
 * tunnel: after 101 Switching Protocols, the byte pump owns both sockets.
 * done: answered, failed or cut; nothing more happens.
 */
export type ExchangePhase =
  | { name: 'choosing' }
  | { name: 'connecting'; conn: BackendConnection }
  | { name: 'sending'; conn: BackendConnection }
  | { name: 'awaiting'; conn: BackendConnection }
  | Relaying
  | { name: 'tunnel' }
  | { name: 'done' };

export interface Relaying {
  name: 'relaying';
  conn: BackendConnection;
  head: ResponseHead;
  requestSent: boolean;
  /** From the response head (http/persistence.ts); the relay may still find the backend out of step. */
  backendPersists: boolean;
}

const WHERE = { choosing: 'connect', connecting: 'connect', sending: 'request', awaiting: 'head', relaying: 'body', tunnel: 'tunnel', done: 'body' } as const;

/** HAProxy's second character of the termination state: where the exchange was when it ended. */
export function endedIn(phase: ExchangePhase): EndedIn {
  return WHERE[phase.name];
}

/** An ending in this phase, with the status the client gets (no time limit involved). */
export function outcomeIn(phase: ExchangePhase, by: EndedBy, status: number, reason: string): Outcome & { status: number } {
  return { by, in: endedIn(phase), status, reason, timedOut: false };
}

/** The request has gone out, or is going: the backend may speak now. */
export function backendMaySpeak(phase: ExchangePhase): phase is Extract<ExchangePhase, { name: 'sending' | 'awaiting' | 'relaying' }> {
  return phase.name === 'sending' || phase.name === 'awaiting' || phase.name === 'relaying';
}
