// Timeouts as deadlines: whatever waits holds the time it gives up at, and one sweep per tick
// expires what is due. Arming, pushing back and stopping a wait are field writes; nothing is
// allocated or inserted per request. (nginx keeps its timers in one red-black tree and expires
// them after each wait for events, in ngx_event_expire_timers.)

/** Who is told when one of its deadlines passes. */
export interface DeadlineOwner {
  expired(deadline: Deadline): void;
}

/** How late a timeout may fire: the sweep runs this often while anything waits. */
export const TICK_MS = 50;

const watched = new Set<Deadline>();
let sweeper: NodeJS.Timeout | undefined;

export class Deadline {
  /** When it passes (Date.now() scale), or 0 when not armed. */
  at = 0;

  constructor(
    readonly ms: number,
    private readonly owner: DeadlineOwner,
  ) {}

  /** Starts the wait, or starts it over. */
  arm(ms = this.ms): void {
    this.at = Date.now() + ms;
    if (!watched.has(this)) watch(this);
  }

  /** Progress seen: starts the wait over, if one is running. */
  touch(): void {
    if (this.at !== 0) this.at = Date.now() + this.ms;
  }

  stop(): void {
    this.at = 0; // the sweep forgets it
  }

  /** Called by the sweep. */
  fire(): void {
    this.at = 0;
    this.owner.expired(this);
  }
}

function watch(deadline: Deadline): void {
  watched.add(deadline);
  if (sweeper) return;
  sweeper = setInterval(sweep, TICK_MS);
  sweeper.unref(); // waiting never keeps the process alive by itself
}

function sweep(): void {
  const now = Date.now();
  for (const deadline of watched) {
    if (deadline.at === 0) watched.delete(deadline);
    else if (deadline.at <= now) {
      watched.delete(deadline);
      deadline.fire();
    }
  }
  if (watched.size === 0) {
    clearInterval(sweeper);
    sweeper = undefined;
  }
}
