// The proxy's state as one JSON document: what the status page shows, /status.json serves and
// /metrics formats. Workers each make one; the primary merges them into the whole proxy's.
import { quantile, type ProcessStatus } from './metrics.ts';
import type { Backend, BackendState } from '../upstream/peers.ts';
import { addTlsCounters, type TlsStatus } from '../tls/tls-status.ts';

/** up: in rotation. down: out after failures (passive). probation: on trial, the first result decides.
 *  checking: out because active health checks fail; back after `rise` good probes. */
export type { BackendState } from '../upstream/peers.ts';
export type { ProcessStatus } from './metrics.ts';

export interface BackendStatus {
  /** HOST:PORT, the backend's identity (rows of several workers are merged by it). */
  address: string;
  /** The name given in the config, if any. */
  name?: string;
  state: BackendState;
  /** Why it is in that state, and since when (ms since the epoch). */
  reason: string;
  since: number;
  /** Requests being served by it right now. */
  active: number;
  requests: number;
  failures: number;
  /** Responses by status class: 1xx, 2xx, 3xx, 4xx, 5xx. */
  responses: number[];
  /** Idle keep-alive connections to it in the pool. */
  idleConnections: number;
  /** Latencies (ms) of the last few seconds, and their percentiles. */
  recentMs: number[];
  p50Ms: number | null;
  p99Ms: number | null;
  /** Histogram: counts per bucket (LATENCY_BUCKETS, then +Inf; /metrics adds them up), sum in seconds, count. */
  histogram: { buckets: number[]; sum: number; count: number };
}

export interface UpstreamStatus {
  name: string;
  strategy: string;
  backends: BackendStatus[];
}

export interface ProxyStatus {
  /** Seconds since the proxy started. */
  uptimeSeconds: number;
  workers: number;
  /** Configurations loaded: 1 at start, one more per reload (SIGHUP). */
  generation: number;
  /** nginx's stub_status: accepted, handled, and open connections by what they are doing. */
  connections: { accepted: number; handled: number; active: number; reading: number; writing: number; waiting: number };
  requests: { total: number; perSecond: number; responses: number[] };
  /** Access log lines dropped because the file or pipe could not keep up. */
  accessLogDropped: number;
  upstreams: UpstreamStatus[];
  /** Handshakes, resumptions, failures, protocols and ciphers: present when a listener speaks TLS. */
  tls?: TlsStatus;
  /** Each process's own figures (process_* in /metrics): one, or the primary and every worker. */
  processes?: ProcessStatus[];
  /** Demo backends the page may stop, start, slow down or break (the lab in `npm start`). */
  lab?: Array<{ backend: string; label: string; mode: string }>;
}

/** One backend's row, as this process sees it; `now` is performance.now(). */
export function backendStatus(b: Backend, idleConnections: number, now: number): BackendStatus {
  const recentMs = b.metrics.recent(now);
  return {
    address: b.hostPort,
    ...(b.config.name !== undefined && { name: b.config.name }),
    state: b.state,
    reason: b.reason,
    since: b.since,
    active: b.active,
    requests: b.metrics.requests,
    failures: b.metrics.failures,
    responses: [...b.metrics.responses],
    idleConnections,
    recentMs,
    p50Ms: quantile(recentMs, 0.5),
    p99Ms: quantile(recentMs, 0.99),
    histogram: { buckets: [...b.metrics.buckets], sum: b.metrics.latencySum, count: b.metrics.latencyCount },
  };
}

const sum = (a: number[], b: number[]) => a.map((x, i) => x + (b[i] ?? 0));

/** One document for the whole proxy, from each worker's (nginx would share memory instead). */
export function mergeStatuses(parts: ProxyStatus[]): ProxyStatus {
  const [first, ...rest] = parts;
  if (!first) throw new Error('no status to merge');
  const merged: ProxyStatus = structuredClone(first);
  merged.workers = parts.length;
  for (const part of rest) {
    merged.uptimeSeconds = Math.max(merged.uptimeSeconds, part.uptimeSeconds);
    merged.generation = Math.max(merged.generation, part.generation);
    for (const key of ['active', 'reading', 'writing', 'waiting'] as const) merged.connections[key] += part.connections[key];
    merged.requests.perSecond += part.requests.perSecond;
    addCounters(merged, part);
    merged.processes = [...(merged.processes ?? []), ...(part.processes ?? [])];
    for (const upstream of part.upstreams) {
      const into = merged.upstreams.find((u) => u.name === upstream.name);
      if (!into) {
        merged.upstreams.push(structuredClone(upstream));
        continue;
      }
      for (const backend of upstream.backends) {
        const b = into.backends.find((x) => x.address === backend.address);
        if (!b) into.backends.push(structuredClone(backend));
        else mergeBackend(b, backend);
      }
    }
  }
  for (const upstream of merged.upstreams) {
    for (const b of upstream.backends) {
      b.p50Ms = quantile(b.recentMs, 0.5);
      b.p99Ms = quantile(b.recentMs, 0.99);
    }
  }
  return merged;
}

/** Counters add up. Each worker judges health on its own: the worst state shows, and says how many. */
function mergeBackend(into: BackendStatus, other: BackendStatus): void {
  into.active += other.active;
  into.idleConnections += other.idleConnections;
  into.recentMs = into.recentMs.concat(other.recentMs);
  addBackendCounters(into, other);
  if (STATE_RANK[other.state] > STATE_RANK[into.state]) {
    into.state = other.state;
    into.reason = other.reason;
    into.since = other.since;
  }
}

const STATE_RANK: Record<BackendState, number> = { up: 0, probation: 1, checking: 2, down: 3 };

/** The figures that only grow (Prometheus counters); gauges and health are left alone. */
function addCounters(into: ProxyStatus, part: ProxyStatus): void {
  into.connections.accepted += part.connections.accepted;
  into.connections.handled += part.connections.handled;
  into.requests.total += part.requests.total;
  into.requests.responses = sum(into.requests.responses, part.requests.responses);
  into.accessLogDropped += part.accessLogDropped;
  addTlsCounters(into, part);
}

function addBackendCounters(into: BackendStatus, other: BackendStatus): void {
  into.requests += other.requests;
  into.failures += other.failures;
  into.responses = sum(into.responses, other.responses);
  into.histogram.buckets = sum(into.histogram.buckets, other.histogram.buckets);
  into.histogram.sum += other.histogram.sum;
  into.histogram.count += other.histogram.count;
}

/** Adds one process's counters to a merged status, into the rows it has (a backend since removed is left out). */
export function addCountersOf(merged: ProxyStatus, part: ProxyStatus): void {
  addCounters(merged, part);
  for (const upstream of part.upstreams) {
    for (const backend of upstream.backends) {
      const into = merged.upstreams.find((u) => u.name === upstream.name)?.backends.find((b) => b.address === backend.address);
      if (into) addBackendCounters(into, backend);
    }
  }
}

/**
 * What workers that have died had counted, kept by the primary and added to every later total:
 * a total that went down would read as a restart to Prometheus, and its rate() would jump.
 */
export class RetiredCounters {
  private kept: ProxyStatus | undefined;

  /** A worker has died: keep the counters of the last status it gave. */
  keep(last: ProxyStatus): void {
    const counters: ProxyStatus = { ...structuredClone(last), processes: [] };
    for (const upstream of counters.upstreams) for (const b of upstream.backends) b.recentMs = [];
    this.kept = this.kept ? mergeStatuses([this.kept, counters]) : counters;
  }

  addTo(merged: ProxyStatus): void {
    if (this.kept) addCountersOf(merged, this.kept);
  }
}
