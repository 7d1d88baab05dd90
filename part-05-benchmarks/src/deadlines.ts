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
    if (this.at === 0) watch(this);
    this.at = Date.now() + ms;
  }

  /** Progress seen: starts the wait over, if one is running. */
  touch(): void {
    if (this.at !== 0) this.at = Date.now() + this.ms;
  }

  stop(): void {
    if (this.at === 0) return;
    this.at = 0;
    // Forgotten now, not at the next sweep: a stopped deadline must not keep its owner (an
    // exchange, its buffers and heads) alive, or each would live long enough to be promoted
    // to the old heap, which costs the garbage collector far more than this delete.
    watched.delete(this);
  }

  /** Called by the sweep, which has already forgotten it. */
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
    if (deadline.at <= now) {
      watched.delete(deadline);
      deadline.fire();
    }
  }
  if (watched.size === 0) {
    clearInterval(sweeper);
    sweeper = undefined;
  }
}
