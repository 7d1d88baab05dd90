// One log line per burst of the same trouble, not one per connection: a thousand refused
// clients in a second are one event. The line after the burst says how many there were.
const QUIET_MS = 1000;

export class BurstLog {
  private count = 0;
  private timer: NodeJS.Timeout | undefined;

  constructor(
    private readonly log: (line: string) => void,
    private readonly what: string,
  ) {}

  /** A burst is under way: events in the last QUIET_MS. */
  get active(): boolean {
    return this.timer !== undefined;
  }

  /** Logs `what: detail` if this is the first of a burst; counts it otherwise. */
  event(detail: string): void {
    this.count++;
    if (this.timer) return void this.timer.refresh();
    this.log(`${this.what}: ${detail}`);
    this.timer = setTimeout(() => {
      if (this.count > 1) this.log(`${this.what}: ${this.count} times in that burst; over now`);
      this.count = 0;
      this.timer = undefined;
    }, QUIET_MS);
    this.timer.unref(); // never keeps the process alive
  }
}
