// Entry point: flags in, "listening on HOST:PORT" out, clean exit on SIGTERM/SIGINT, config
// reload on SIGHUP. With --workers N, a primary process forks N workers that share the port.
import cluster, { type Worker } from 'node:cluster';
import { parseFlags, UsageError, usage } from './cli.ts';
import { startProxy } from './proxy.ts';
import { formatAddress } from './address.ts';
import type { ProxyConfig } from './config.ts';
import { startAdmin } from './observe/admin.ts';
import { addCountersOf, mergeStatuses, RetiredCounters, type ProxyStatus } from './observe/status.ts';
import { processStatus } from './observe/metrics.ts';
import { inheritedTicketKeys, TicketKeyRotation, ticketKeysIn } from './tls/ticket-keys.ts';
import { hasTls } from './tls/tls-config.ts';

const SHUTDOWN_DEADLINE_MS = 10_000;
const SHUTTING_DOWN = 'shutting down: no new clients, finishing open connections';

function readConfig(): ProxyConfig {
  if (process.argv.slice(2).includes('--help')) {
    console.log(usage);
    process.exit(0);
  }
  try {
    return parseFlags(process.argv.slice(2));
  } catch (err) {
    if (!(err instanceof UsageError)) throw err;
    console.error(err.showUsage ? `error: ${err.message}\n${usage}` : `error: ${err.message}`);
    process.exit(2);
  }
}

/** One proxy in this process (a worker, or the only process). */
async function serve(config: ProxyConfig, announce: boolean): Promise<void> {
  // Alone, this process rotates its own ticket key; a worker has the primary's, and gets each new one.
  const rotation = announce && hasTls(config) ? new TicketKeyRotation(config.tls.ticketKeyRotationMs, (keys) => proxy.setTicketKeys(keys)) : undefined;
  const ticketKeys = inheritedTicketKeys() ?? rotation?.keys;
  const proxy = await startProxy({ ...config, ...(ticketKeys && { ticketKeys }) });
  const status = (): ProxyStatus => ({ ...proxy.status(), processes: [processStatus()] });

  let closing: Promise<number> | undefined;
  const shutdown = async () => {
    if (closing) return; // a signal can arrive twice: from the terminal, then from the primary (or tsx, or npm)
    closing = proxy.close(SHUTDOWN_DEADLINE_MS); // stops accepting before it returns
    if (announce) console.error(SHUTTING_DOWN); // with workers, the primary says it once
    await closing;
    process.exit(0);
  };
  process.on('SIGTERM', shutdown);
  process.on('SIGINT', shutdown);
  process.on('SIGHUP', () => {
    // Re-read the same flags (and so the same --config file); a bad file changes nothing.
    let next: ProxyConfig;
    try {
      next = parseFlags(process.argv.slice(2));
    } catch (err) {
      console.error(`reload rejected, keeping the old configuration: ${(err as Error).message}`);
      return;
    }
    proxy.reload(next);
  });
  // Only now: whoever reads this line may signal us at once, and the handlers must be there.
  if (announce) {
    for (const address of proxy.addresses) console.log(`listening on ${formatAddress(address)}`);
    if (config.admin) await announceAdmin(config, async () => status());
    announcePid();
  } else {
    // The primary asks each worker for its numbers and adds them up.
    process.on('message', (message: { statusRequest?: number }) => {
      if (message.statusRequest !== undefined) process.send!({ statusReply: message.statusRequest, status: status() });
      const keys = ticketKeysIn(message);
      if (keys) proxy.setTicketKeys(keys);
    });
    process.send!({ listening: proxy.addresses });
  }
}

/** Starts the admin listener and says where it is: "status on http://HOST:PORT/". */
async function announceAdmin(config: ProxyConfig, status: () => Promise<ProxyStatus>): Promise<void> {
  const admin = await startAdmin(config.admin!, status);
  console.log(`status on http://${formatAddress(admin.address)}/`);
}

/**
 * The whole proxy's status, for the primary: every worker's, gathered over IPC and merged. Workers
 * that died or are slow to answer still count what they had counted, so that no total goes down.
 */
class WorkerStatuses {
  /** Each worker's place, 1..N, by cluster id: a replacement takes over the place of the one that died. */
  readonly places = new Map<number, number>();
  private readonly last = new Map<number, ProxyStatus>();
  private readonly retired = new RetiredCounters();
  private nextRequest = 0;

  /** Keeps a dead worker's counters; returns the place its replacement takes. */
  died(id: number): number | undefined {
    const last = this.last.get(id);
    if (last) this.retired.keep(last);
    this.last.delete(id);
    const place = this.places.get(id);
    this.places.delete(id);
    return place;
  }

  gather(): Promise<ProxyStatus> {
    const id = this.nextRequest++;
    const workers = Object.values(cluster.workers ?? {}).filter((w): w is Worker => w !== undefined && w.isConnected());
    return new Promise((resolve, reject) => {
      const replies = new Map<number, ProxyStatus>();
      const done = () => {
        clearTimeout(timer);
        cluster.off('message', onMessage);
        if (replies.size === 0) return reject(new Error('no worker answered'));
        const merged = mergeStatuses([...replies.values()]);
        for (const worker of workers) {
          const last = this.last.get(worker.id);
          if (!replies.has(worker.id) && last) addCountersOf(merged, last);
        }
        this.retired.addTo(merged);
        const byPlace = (merged.processes ?? []).sort((a, b) => Number(a.worker) - Number(b.worker));
        merged.processes = [{ worker: 'primary', ...processStatus() }, ...byPlace];
        resolve(merged);
      };
      const onMessage = (worker: Worker, message: { statusReply?: number; status?: ProxyStatus }) => {
        if (message.statusReply !== id || !message.status) return;
        const place = String(this.places.get(worker.id));
        const status = { ...message.status, processes: message.status.processes?.map((p) => ({ ...p, worker: place })) };
        replies.set(worker.id, status);
        this.last.set(worker.id, status);
        if (replies.size === workers.length) done();
      };
      const timer = setTimeout(done, 1000);
      cluster.on('message', onMessage);
      for (const worker of workers) worker.send({ statusRequest: id });
    });
  }
}

// A worker that keeps dying is restarted after a delay that doubles each time (as systemd's
// RestartSec with a backoff), and the count starts again once a worker has stayed up a while.
const RESTART_FIRST_DELAY_MS = 100;
const RESTART_MAX_DELAY_MS = 10_000;
const RESTART_FORGIVEN_AFTER_MS = 30_000;

/** What a worker tells the primary. */
type WorkerMessage = { listening?: Array<{ host: string; port: number }>; startFailed?: string };

/** The primary: forks the workers, relays signals, and speaks for them. */
function supervise(config: ProxyConfig): void {
  // Every worker accepts from the shared socket and the kernel picks one, as nginx's workers do:
  // Node's default, the primary accepting and handing each connection over, costs a message per
  // connection (section 5.3). NODE_CLUSTER_SCHED_POLICY=rr still asks for it.
  if (process.env.NODE_CLUSTER_SCHED_POLICY === undefined) cluster.schedulingPolicy = cluster.SCHED_NONE;
  const listening = new Set<number>(); // worker ids that have listened
  let ready = false;
  let stopping = false;
  let exitCode = 0;
  let deaths = 0;
  let lastDeath = 0;
  const statuses = new WorkerStatuses();
  // The ticket key is made here and shared, so that a ticket from one worker resumes on any other.
  const ticketKeys = hasTls(config)
    ? new TicketKeyRotation(config.tls.ticketKeyRotationMs, () => {
        for (const worker of Object.values(cluster.workers ?? {})) if (worker?.isConnected()) worker.send(ticketKeys!.message());
      })
    : undefined;
  const fork = (place: number) => statuses.places.set(cluster.fork(ticketKeys?.env()).id, place);
  for (let place = 1; place <= config.workers; place++) fork(place);
  cluster.on('message', (worker, message: WorkerMessage) => {
    if (message.startFailed !== undefined) return failedToStart(message.startFailed);
    if (!message.listening) return;
    listening.add(worker.id);
    if (ready) return console.error(`worker ${worker.process.pid} listening, in place of the one that died`);
    // Ready means every worker is ready: each one's signal handlers are in place by now.
    if (listening.size < config.workers) return;
    ready = true;
    for (const address of message.listening) console.log(`listening on ${formatAddress(address)}`);
    const announced = config.admin ? announceAdmin(config, () => statuses.gather()) : Promise.resolve();
    announced.then(announcePid, (err: Error) => {
      console.error(`error: admin listener: ${err.message}`);
      stop();
    });
  });
  cluster.on('exit', (worker, code, signal) => {
    const place = statuses.died(worker.id);
    if (stopping) {
      if (Object.keys(cluster.workers ?? {}).length === 0) process.exit(exitCode);
      return;
    }
    // Before it listened, a worker's death is a start-up error (a busy port, a bad file): as nginx's
    // master when it cannot bind, stop rather than fork into the same error again.
    if (!listening.delete(worker.id)) return failedToStart(`a worker exited before it listened (${signal ?? code})`);
    const now = Date.now();
    deaths = now - lastDeath > RESTART_FORGIVEN_AFTER_MS ? 1 : deaths + 1;
    lastDeath = now;
    const delay = Math.min(RESTART_FIRST_DELAY_MS * 2 ** (deaths - 1), RESTART_MAX_DELAY_MS);
    console.error(`worker ${worker.process.pid} died (${signal ?? code}); starting another in ${delay} ms`);
    setTimeout(() => stopping || fork(place ?? 0), delay);
  });
  // The worker has printed nothing: its error is said here, once, for the whole process.
  const failedToStart = (reason: string) => {
    if (stopping) return;
    console.error(`error: ${reason}`);
    exitCode = 2;
    stop();
  };
  const stop = () => {
    stopping = true;
    const workers = Object.values(cluster.workers ?? {});
    if (workers.length === 0) process.exit(exitCode);
    for (const worker of workers) worker?.process.kill('SIGTERM');
  };
  const shutdown = () => {
    if (stopping) return;
    console.error(SHUTTING_DOWN);
    stop();
  };
  process.on('SIGTERM', shutdown);
  process.on('SIGINT', shutdown);
  process.on('SIGHUP', () => {
    for (const worker of Object.values(cluster.workers ?? {})) worker?.process.kill('SIGHUP');
  });
}

/** The process to signal. Under `npx tsx` the one `ps` shows first is a wrapper that HUP would kill. */
function announcePid(): void {
  console.log(`pid ${process.pid}: kill -HUP ${process.pid} reloads the configuration, kill -TERM ${process.pid} stops`);
}

async function main(): Promise<void> {
  const config = readConfig();
  if (config.workers === 1) return serve(config, true);
  if (cluster.isPrimary) return supervise(config);
  return serve(config, false);
}

main().catch((err: NodeJS.ErrnoException) => {
  // Listening failures (port in use, bad host) are configuration mistakes too.
  const code = err.code === 'EADDRINUSE' || err.code === 'EADDRNOTAVAIL' || err.code === 'EACCES' ? 2 : 1;
  // A worker hands its error to the primary, which says it once and stops the whole process.
  if (cluster.isWorker && process.send) process.send({ startFailed: err.message }, () => process.exit(code));
  else {
    console.error(`error: ${err.message}`);
    process.exit(code);
  }
});
