// The backends and their health. Passive checks follow nginx's max_fails/fail_timeout;
// active checks follow HAProxy's rise/fall. A backend takes traffic only if both say yes.
import { formatAddress, type Address } from '../address.ts';
import type { BackendConfig } from '../config.ts';
import type { Candidate } from './strategies/index.ts';
import { BackendMetrics } from '../observe/metrics.ts';
import { BurstLog } from '../burst-log.ts';

/** up: in rotation. down: skipped until downUntil. probation: back after down; one result decides. */
export type PassiveState = 'up' | 'down' | 'probation';

/** What the status page shows for a backend. */
export type BackendState = 'up' | 'down' | 'probation' | 'checking';

export class Backend implements Candidate {
  readonly address: Address;
  /** The address as text: its identity in logs and metrics, and the Host for a request that has none. Never the configured name. */
  readonly hostPort: string;
  readonly weight: number;
  active = 0;
  passive: PassiveState = 'up';
  /** Set by active health checks; always false when they are off. */
  failedChecks = false;
  /** Why it is in its state, and since when (wall clock, for the status page). */
  reason = 'in rotation';
  since = Date.now();
  /** Its counters; the proxy gives it ones that outlive reloads. */
  metrics = new BackendMetrics();
  private fails = 0;
  private windowStart = 0;
  private downUntil = 0;

  constructor(readonly config: BackendConfig) {
    this.address = config.address;
    this.hostPort = formatAddress(config.address);
    this.weight = config.weight;
  }

  /** Passive accounting of one failure (connect, reset, timeout, bad response). Returns a log line if the state changed. */
  recordFailure(now: number, reason: string): string | undefined {
    const { maxFails, failTimeoutMs } = this.config;
    if (maxFails === 0) return undefined; // nginx: max_fails=0 turns the accounting off
    if (this.passive === 'probation') return this.markDown(now, `its trial request failed (${reason})`);
    if (now - this.windowStart > failTimeoutMs) {
      this.windowStart = now; // the old failures are too old to count
      this.fails = 0;
    }
    this.fails++;
    if (this.passive === 'up' && this.fails >= maxFails) {
      return this.markDown(now, `${this.fails} failure(s) within ${failTimeoutMs} ms (last: ${reason})`);
    }
    return undefined;
  }

  /** A request got its response. Returns a log line if the state changed. */
  recordSuccess(): string | undefined {
    this.fails = 0;
    if (this.passive !== 'probation') return undefined;
    this.passive = 'up';
    this.note('trial request succeeded');
    return `backend ${this.hostPort} is up again: trial request succeeded`;
  }

  /** Whether new requests may go here; moves down -> probation once fail_timeout is over. */
  available(now: number, log: (line: string) => void): boolean {
    if (this.passive === 'down' && now >= this.downUntil) {
      this.passive = 'probation';
      this.note('fail timeout over: the next request is its trial');
      log(`backend ${this.hostPort} fail timeout over: trying it again`);
    }
    return this.passive !== 'down' && !this.failedChecks;
  }

  /** Back in rotation at once, its failures forgotten. */
  revive(): void {
    this.passive = 'up';
    this.fails = 0;
    this.note('every backend was down: all marked up again for quick recovery');
  }

  /** Active health checks have taken it out (failed) or brought it back. */
  setFailedChecks(failed: boolean, reason: string): void {
    this.failedChecks = failed;
    this.note(reason);
  }

  /** What the status page shows. Failing active checks outrank the passive state. */
  get state(): BackendState {
    return this.failedChecks ? 'checking' : this.passive;
  }

  private note(reason: string): void {
    this.reason = reason;
    this.since = Date.now();
  }

  private markDown(now: number, why: string): string {
    this.passive = 'down';
    this.downUntil = now + this.config.failTimeoutMs;
    this.fails = 0;
    this.note(why);
    return `backend ${this.hostPort} marked down for ${this.config.failTimeoutMs} ms: ${why}`;
  }
}

/** The backends of one upstream and their health: what nginx calls its peers (not to be confused with ConnectionPool). */
export class Peers {
  readonly backends: Backend[];
  /** Every backend down, again and again: one line for the burst, not three or four per request. */
  private readonly allDown: BurstLog;

  constructor(
    configs: BackendConfig[],
    private readonly now: () => number,
    private readonly log: (line: string) => void,
  ) {
    this.backends = configs.map((config) => new Backend(config));
    this.allDown = new BurstLog(log, 'every backend was down');
  }

  /** While every backend keeps failing, their failures and the errors they cause are counted, not logged. */
  get quiet(): boolean {
    return this.allDown.active;
  }

  /** Backends that may take a new request now. */
  available(): Backend[] {
    const now = this.now();
    const ready = this.backends.filter((backend) => backend.available(now, this.log));
    // nginx: "all peers failed, mark them as live for quick recovery". This request is
    // answered with what it has; the next one tries them all again.
    if (ready.length === 0) this.reviveAll();
    return ready;
  }

  failed(backend: Backend, reason: string): void {
    // nginx: a lone server "will never be considered unavailable": taking it out helps nobody.
    if (this.backends.length === 1) return;
    this.report(backend.recordFailure(this.now(), reason));
  }

  succeeded(backend: Backend): void {
    this.report(backend.recordSuccess());
  }

  private reviveAll(): void {
    const down = this.backends.filter((backend) => backend.passive !== 'up');
    if (down.length === 0) return; // out because of active checks: those decide for themselves
    for (const backend of down) backend.revive();
    this.allDown.event(`${down.map((b) => b.hostPort).join(', ')} marked up again for quick recovery (until this is over, their failures are counted, not logged)`);
  }

  private report(line: string | undefined): void {
    if (line && !this.quiet) this.log(line);
  }
}
