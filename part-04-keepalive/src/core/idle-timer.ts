// A timer for "too long without progress": armed once, pushed back by each sign of life
// (refresh() moves the same timer instead of making a new one).
export class IdleTimer {
  private timer: NodeJS.Timeout | undefined;

  constructor(
    private readonly ms: number,
    private readonly fire: () => void,
  ) {}

  /** Starts the wait, or starts it over. */
  arm(): void {
    if (this.timer) this.timer.refresh();
    else this.timer = setTimeout(this.fire, this.ms);
  }

  /** Progress seen: starts the wait over, if one is running. */
  touch(): void {
    this.timer?.refresh();
  }

  stop(): void {
    clearTimeout(this.timer);
    this.timer = undefined;
  }
}
