// What the proxy counts while it works, for the status page, /status.json and /metrics.
// Counting is a few integer increments per request; everything else (percentiles, rates,
// connection states) is worked out only when someone asks.
import { readdirSync, readFileSync } from 'node:fs';
import { statusClass } from '../counters.ts';

/** Upper bounds of the latency histogram, in seconds (Prometheus' `le` labels). */
export const LATENCY_BUCKETS = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10];
/** Latencies kept per backend for p50/p99, and how far back they count. */
const RECENT = 512;
export const RECENT_WINDOW_MS = 10_000;

/** One backend's counters. They outlive reloads: the proxy keeps one per upstream and address. */
export class BackendMetrics {
  /** Requests sent to it (each attempt counts, retries too). */
  requests = 0;
  /** Attempts that failed on its side: refused, reset, timed out, bad response. */
  failures = 0;
  /** Its responses by status class, 1xx to 5xx. */
  readonly responses = [0, 0, 0, 0, 0];
  /** Histogram counts, one per LATENCY_BUCKETS entry (latencies up to it, above the one before), then +Inf. */
  readonly buckets = new Array<number>(LATENCY_BUCKETS.length + 1).fill(0);
  latencySum = 0;
  latencyCount = 0;
  /** A ring of recent latencies (ms) and when each was taken. */
  private readonly recentMs = new Float64Array(RECENT);
  private readonly recentAt = new Float64Array(RECENT);
  private next = 0;

  /** It answered with this status. */
  responded(status: number): void {
    const at = statusClass(status);
    this.responses[at] = (this.responses[at] ?? 0) + 1;
  }

  /** A response from this backend took `ms` from sending the request to its last byte. */
  observe(ms: number, now: number): void {
    const seconds = ms / 1000;
    let i = 0;
    while (i < LATENCY_BUCKETS.length && seconds > LATENCY_BUCKETS[i]!) i++;
    this.buckets[i]!++;
    this.latencySum += seconds;
    this.latencyCount++;
    this.recentMs[this.next] = ms;
    this.recentAt[this.next] = now;
    this.next = (this.next + 1) % RECENT;
  }

  /** The latencies (ms) taken within the last RECENT_WINDOW_MS. */
  recent(now: number): number[] {
    const out: number[] = [];
    for (let i = 0; i < RECENT; i++) {
      if (this.recentAt[i]! > 0 && now - this.recentAt[i]! <= RECENT_WINDOW_MS) out.push(this.recentMs[i]!);
    }
    return out;
  }
}

/** The q-quantile (0..1) of some numbers, or null when there are none. */
export function quantile(values: number[], q: number): number | null {
  if (values.length === 0) return null;
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.ceil(q * sorted.length) - 1)]!;
}

/** Requests per second over the last few seconds, from a once-a-second sample of a counter. */
export class RateMeter {
  private readonly samples: Array<{ at: number; count: number }> = [];

  sample(at: number, count: number): void {
    this.samples.push({ at, count });
    if (this.samples.length > 6) this.samples.shift();
  }

  perSecond(): number {
    if (this.samples.length < 2) return 0;
    const first = this.samples[0]!;
    const last = this.samples.at(-1)!;
    return last.at > first.at ? ((last.count - first.count) * 1000) / (last.at - first.at) : 0;
  }
}

// Worked out once: computed at each call it would wobble by a millisecond.
const START_TIME_SECONDS = Math.round(Date.now() - process.uptime() * 1000) / 1000;

/** One process's figures, under the Prometheus client's names (process_cpu_seconds_total, ...). */
export interface ProcessStatus {
  /** "primary", or the worker's place (1..N, which a replacement takes over); absent with one process. */
  worker?: string;
  pid: number;
  cpuSeconds: number;
  residentBytes: number;
  /** Open file descriptors and their limit; null where there is no /proc. */
  openFds: number | null;
  maxFds: number | null;
  /** When the process started, in seconds since the epoch. */
  startTimeSeconds: number;
}

/** This process's own figures, as the Prometheus client reports them. */
export function processStatus(): ProcessStatus {
  const cpu = process.cpuUsage();
  return {
    pid: process.pid,
    cpuSeconds: (cpu.user + cpu.system) / 1e6,
    residentBytes: process.memoryUsage.rss(),
    startTimeSeconds: START_TIME_SECONDS,
    ...descriptors(),
  };
}

/** Open descriptors and the limit on them (`ulimit -n`), from Linux's /proc; null elsewhere. */
function descriptors(): { openFds: number | null; maxFds: number | null } {
  try {
    const openFds = readdirSync('/proc/self/fd').length - 1; // less the one that reading the folder opened
    const limit = /^Max open files\s+(\d+)/m.exec(readFileSync('/proc/self/limits', 'utf8'));
    return { openFds, maxFds: limit ? Number(limit[1]) : null };
  } catch {
    return { openFds: null, maxFds: null };
  }
}
