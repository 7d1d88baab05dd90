// Resumption by session id (nginx's ssl_session_cache): the server keeps each session, the client
// sends its id back. Node's server hands us the sessions through two events of the tls.Server;
// this cache lives in one process, so a client resumes only on the worker that served it first.
// Node reads the id from the ClientHello, so this resumes TLS 1.2 sessions: TLS 1.3 resumes by tickets.
import type tls from 'node:tls';

/** Sessions kept at most: about 1 KB each (HAProxy's tune.ssl.cachesize is 20000 too). */
export const SESSION_CACHE_ENTRIES = 20_000;

export class SessionCache {
  /** Insertion order is age order: the first entry is the oldest. */
  private readonly sessions = new Map<string, { data: Buffer; at: number }>();

  constructor(private readonly lifetimeMs: () => number) {}

  get size(): number {
    return this.sessions.size;
  }

  /** Makes `hub` (the tls.Server every TLS socket names as its server) store and find sessions here. */
  serve(hub: tls.Server): void {
    hub.on('newSession', (id: Buffer, data: Buffer, done: () => void) => {
      const key = id.toString('hex');
      this.sessions.delete(key);
      this.sessions.set(key, { data, at: performance.now() });
      if (this.sessions.size > SESSION_CACHE_ENTRIES) this.sessions.delete(this.sessions.keys().next().value!);
      done();
    });
    hub.on('resumeSession', (id: Buffer, done: (err: Error | null, data: Buffer | null) => void) => {
      const key = id.toString('hex');
      const entry = this.sessions.get(key);
      if (entry && performance.now() - entry.at > this.lifetimeMs()) this.sessions.delete(key);
      done(null, entry && this.sessions.has(key) ? entry.data : null);
    });
  }
}
