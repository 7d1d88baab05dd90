// Timeouts as deadlines: whatever waits holds the time it gives up at, and one sweep per tick
// expires what is due. Arming, pushing back and stopping a wait move a node in a linked list;
// nothing is allocated per request. Deadlines of the same length sit in one list, and since each
// new or pushed-back deadline goes to the end, every list stays in order of expiry: the sweep
// looks only at the front of each. (Node's own timers keep one list per duration the same way;
// nginx keeps all its timers in one red-black tree, expired in ngx_event_expire_timers.)

/** Who is told when one of its deadlines passes. */
export interface DeadlineOwner {
  expired(deadline: Deadline): void;
}

/** How late a timeout may fire: the sweep runs this often while anything waits. */
export const TICK_MS = 50;

/** The deadlines of one length, earliest first. */
interface Queue {
  first: Deadline | undefined;
  last: Deadline | undefined;
}

const queues = new Map<number, Queue>();
/** Deadlines armed, in all queues: the sweep runs only while there are some. */
let waiting = 0;
let sweeper: NodeJS.Timeout | undefined;

export class Deadline {
  /** When it passes (Date.now() scale), or 0 when not armed. */
  at = 0;
  private queue: Queue | undefined;
  private prev: Deadline | undefined;
  private next: Deadline | undefined;

  constructor(
    /** The length of the wait that touch() starts over. */
    readonly ms: number,
    private readonly owner: DeadlineOwner,
  ) {}

  /** Starts the wait (of `ms`, or this deadline's own length), or starts it over. */
  arm(ms = this.ms): void {
    if (this.queue) this.unlink();
    else if (waiting++ === 0) startSweeping();
    this.at = Date.now() + ms;
    this.append(ms);
  }

  /** Progress seen: starts the wait over, if one is running. */
  touch(): void {
    if (this.at !== 0) this.arm();
  }

  stop(): void {
    if (!this.queue) return;
    this.unlink();
    this.at = 0;
    if (--waiting === 0) stopSweeping();
  }

  /** Called by the sweep for a deadline that is due. */
  fire(): void {
    this.stop();
    this.owner.expired(this);
  }

  private append(ms: number): void {
    let queue = queues.get(ms);
    if (!queue) queues.set(ms, (queue = { first: undefined, last: undefined }));
    this.queue = queue;
    this.prev = queue.last;
    if (queue.last) queue.last.next = this;
    else queue.first = this;
    queue.last = this;
  }

  private unlink(): void {
    const queue = this.queue;
    if (!queue) return;
    if (this.prev) this.prev.next = this.next;
    else queue.first = this.next;
    if (this.next) this.next.prev = this.prev;
    else queue.last = this.prev;
    this.queue = this.prev = this.next = undefined;
  }

  /** The sweep: fires every deadline of this queue that is due (they are at its front). */
  static expire(queue: Queue, now: number): void {
    while (queue.first && queue.first.at <= now) queue.first.fire();
  }
}

function startSweeping(): void {
  sweeper = setInterval(sweep, TICK_MS);
  sweeper.unref(); // waiting never keeps the process alive by itself
}

function stopSweeping(): void {
  clearInterval(sweeper);
  sweeper = undefined;
}

function sweep(): void {
  const now = Date.now();
  for (const queue of queues.values()) Deadline.expire(queue, now);
}
