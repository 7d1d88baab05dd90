// The backends and their health. Passive checks follow nginx's max_fails/fail_timeout;
// active checks follow HAProxy's rise/fall. A backend takes traffic only if both say yes.
import { formatAddress, type Address } from './address.ts';
import type { BackendConfig } from './config.ts';
import type { Candidate } from './strategies/index.ts';

/** up: in rotation. down: skipped until downUntil. probation: back after down; one result decides. */
export type PassiveState = 'up' | 'down' | 'probation';

export class Backend implements Candidate {
  readonly address: Address;
  readonly name: string;
  readonly weight: number;
  active = 0;
  passive: PassiveState = 'up';
  /** Set by active health checks; always false when they are off. */
  failedChecks = false;
  private fails = 0;
  private windowStart = 0;
  private downUntil = 0;

  constructor(readonly config: BackendConfig) {
    this.address = config.address;
    this.name = formatAddress(config.address);
    this.weight = config.weight;
  }

  /** Passive accounting of one failed connect. Returns a log line if the state changed. */
  recordFailure(now: number, reason: string): string | undefined {
    const { maxFails, failTimeoutMs } = this.config;
    if (maxFails === 0) return undefined; // nginx: max_fails=0 turns the accounting off
    if (this.passive === 'probation') return this.markDown(now, `its trial connect failed (${reason})`);
    if (now - this.windowStart > failTimeoutMs) {
      this.windowStart = now; // the old failures are too old to count
      this.fails = 0;
    }
    this.fails++;
    if (this.passive === 'up' && this.fails >= maxFails) {
      return this.markDown(now, `${this.fails} failed connect(s) within ${failTimeoutMs} ms (last: ${reason})`);
    }
    return undefined;
  }

  /** A connect succeeded. Returns a log line if the state changed. */
  recordSuccess(): string | undefined {
    this.fails = 0;
    if (this.passive !== 'probation') return undefined;
    this.passive = 'up';
    return `backend ${this.name} is up again: trial connect succeeded`;
  }

  /** Whether new connections may go here; moves down -> probation once fail_timeout is over. */
  available(now: number, log: (line: string) => void): boolean {
    if (this.passive === 'down' && now >= this.downUntil) {
      this.passive = 'probation';
      log(`backend ${this.name} fail timeout over: trying it again`);
    }
    return this.passive !== 'down' && !this.failedChecks;
  }

  /** Back in rotation at once, its failures forgotten. */
  revive(): void {
    this.passive = 'up';
    this.fails = 0;
  }

  private markDown(now: number, why: string): string {
    this.passive = 'down';
    this.downUntil = now + this.config.failTimeoutMs;
    this.fails = 0;
    return `backend ${this.name} marked down for ${this.config.failTimeoutMs} ms: ${why}`;
  }
}

/** The backends of one upstream and their health: what nginx calls its peers. */
export class Peers {
  readonly backends: Backend[];

  constructor(
    configs: BackendConfig[],
    private readonly now: () => number,
    private readonly log: (line: string) => void,
  ) {
    this.backends = configs.map((config) => new Backend(config));
  }

  /** Backends that may take a new connection now. */
  available(): Backend[] {
    const now = this.now();
    const ready = this.backends.filter((backend) => backend.available(now, this.log));
    // nginx: "all peers failed, mark them as live for quick recovery". This request is
    // answered with what it has; the next one tries them all again.
    if (ready.length === 0) this.reviveAll();
    return ready;
  }

  connectFailed(backend: Backend, reason: string): void {
    // nginx: a lone server "will never be considered unavailable": taking it out helps nobody.
    if (this.backends.length === 1) return;
    this.report(backend.recordFailure(this.now(), reason));
  }

  connected(backend: Backend): void {
    this.report(backend.recordSuccess());
  }

  private reviveAll(): void {
    const down = this.backends.filter((backend) => backend.passive !== 'up');
    if (down.length === 0) return; // out because of active checks: those decide for themselves
    for (const backend of down) backend.revive();
    this.log(`every backend was down: ${down.map((b) => b.name).join(', ')} marked up again for quick recovery`);
  }

  private report(line: string | undefined): void {
    if (line) this.log(line);
  }
}
