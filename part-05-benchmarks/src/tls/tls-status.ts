// What TLS termination counts, for the status page, /status.json and /metrics: handshakes (and how
// many were resumptions), the protocol and cipher they settled on, and failed handshakes by reason.
export interface TlsStatus {
  /** Completed handshakes, resumed ones included. */
  handshakes: number;
  /** Handshakes that resumed an earlier session (a ticket, or the session cache): no public-key work. */
  resumed: number;
  /** Completed handshakes by "protocol cipher", as $ssl_protocol $ssl_cipher print them. */
  negotiated: Record<string, number>;
  /** Handshakes that did not complete, by reason (OpenSSL's, lower-cased; or timeout, plain_http, not_tls). */
  failures: Record<string, number>;
  /** Sessions in this process's cache (a gauge: the caches are per worker). */
  sessionCacheEntries: number;
}

export class TlsCounters {
  handshakes = 0;
  resumed = 0;
  private readonly negotiated = new Map<string, number>();
  private readonly failures = new Map<string, number>();

  succeeded(protocol: string, cipher: string, resumed: boolean): void {
    this.handshakes++;
    if (resumed) this.resumed++;
    const key = `${protocol} ${cipher}`;
    this.negotiated.set(key, (this.negotiated.get(key) ?? 0) + 1);
  }

  failed(reason: string): void {
    this.failures.set(reason, (this.failures.get(reason) ?? 0) + 1);
  }

  status(sessionCacheEntries: number): TlsStatus {
    return {
      handshakes: this.handshakes,
      resumed: this.resumed,
      negotiated: Object.fromEntries(this.negotiated),
      failures: Object.fromEntries(this.failures),
      sessionCacheEntries,
    };
  }
}

/** A failed handshake's reason, from the error the TLS socket gave. */
export function failureReason(err: NodeJS.ErrnoException): string {
  if (err.code === 'ECONNRESET' || err.code === 'EPIPE') return 'client_closed';
  const ssl = /^ERR_SSL_(.+)$/.exec(err.code ?? '');
  return (ssl ? ssl[1]! : (err.code ?? 'other')).toLowerCase();
}

const addUp = (a: Record<string, number>, b: Record<string, number>) => {
  const out = { ...a };
  for (const [key, n] of Object.entries(b)) out[key] = (out[key] ?? 0) + n;
  return out;
};

/** Adds one process's TLS figures into a merged status (the caches' sizes add up too). */
export function addTlsCounters(into: { tls?: TlsStatus }, part: { tls?: TlsStatus }): void {
  if (!part.tls) return;
  if (!into.tls) return void (into.tls = structuredClone(part.tls));
  into.tls.handshakes += part.tls.handshakes;
  into.tls.resumed += part.tls.resumed;
  into.tls.negotiated = addUp(into.tls.negotiated, part.tls.negotiated);
  into.tls.failures = addUp(into.tls.failures, part.tls.failures);
  into.tls.sessionCacheEntries += part.tls.sessionCacheEntries;
}

type Metric = (name: string, type: 'counter' | 'gauge', help: string, samples: Array<[string, number]>) => void;
const label = (value: string) => value.replace(/\\/g, '\\\\').replace(/"/g, '\\"');

/** The lb_tls_* series of /metrics. */
export function tlsMetrics(tls: TlsStatus | undefined, metric: Metric): void {
  if (!tls) return;
  metric('lb_tls_handshakes_total', 'counter', 'Completed TLS handshakes, by protocol and cipher.', Object.entries(tls.negotiated).map(([key, n]) => {
    const [protocol, cipher] = key.split(' ');
    return [`{protocol="${label(protocol!)}",cipher="${label(cipher ?? '')}"}`, n];
  }));
  metric('lb_tls_resumed_handshakes_total', 'counter', 'TLS handshakes that resumed a session (ticket or cache).', [['', tls.resumed]]);
  metric('lb_tls_handshake_failures_total', 'counter', 'TLS handshakes that did not complete, by reason.', Object.entries(tls.failures).map(([reason, n]) => [`{reason="${label(reason)}"}`, n]));
  metric('lb_tls_session_cache_entries', 'gauge', 'Sessions held in the session caches (one per worker).', [['', tls.sessionCacheEntries]]);
}
