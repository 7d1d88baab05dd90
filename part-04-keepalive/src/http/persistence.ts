// Whether a connection may carry another request, decided once from the heads (RFC 9112 §9.3),
// and how a response body is framed toward the client.
import { headerTokens, type RequestHead, type ResponseHead } from './parser.ts';
import { responseFraming, type Framing } from './body.ts';

/** The client asked to keep its connection: HTTP/1.1 and no `Connection: close`. */
export function clientAsksToPersist(request: RequestHead): boolean {
  return request.version === '1.1' && !headerTokens(request, 'connection').includes('close');
}

/** How one response travels: as the backend frames it, as we frame it for the client, and what it leaves behind. */
export interface ResponsePlan {
  fromBackend: Framing;
  /** A body that runs until close is re-chunked for HTTP/1.1 clients, so their connection survives. */
  toClient: Framing;
  /** The backend's connection may carry another request once this response is read. */
  backendPersists: boolean;
}

/** Throws HttpError (502) for a response whose framing cannot be trusted. */
export function responsePlan(request: RequestHead, response: ResponseHead): ResponsePlan {
  const fromBackend = responseFraming(response, request.method);
  const open = fromBackend.kind === 'chunked' || fromBackend.kind === 'close';
  const toClient: Framing = open ? { kind: request.version === '1.1' ? 'chunked' : 'close' } : fromBackend;
  const backendPersists =
    fromBackend.kind !== 'close' && response.version === '1.1' && !headerTokens(response, 'connection').includes('close');
  return { fromBackend, toClient, backendPersists };
}
