// Entry point: flags in, "listening on HOST:PORT" out, clean exit on SIGTERM/SIGINT, config
// reload on SIGHUP. With --workers N, a primary process forks N workers that share the port.
import cluster from 'node:cluster';
import { parseFlags, UsageError, usage } from './cli.ts';
import { startProxy } from './proxy.ts';
import { formatAddress } from './address.ts';
import type { ProxyConfig } from './config.ts';
import { startAdmin } from './admin.ts';
import { mergeStatuses, type ProxyStatus } from './status.ts';

const SHUTDOWN_DEADLINE_MS = 10_000;

function readConfig(): ProxyConfig {
  if (process.argv.slice(2).includes('--help')) {
    console.log(usage);
    process.exit(0);
  }
  try {
    return parseFlags(process.argv.slice(2));
  } catch (err) {
    if (!(err instanceof UsageError)) throw err;
    console.error(`error: ${err.message}\n${usage}`);
    process.exit(2);
  }
}

/** One proxy in this process (a worker, or the only process). */
async function serve(config: ProxyConfig, announce: boolean): Promise<void> {
  const proxy = await startProxy(config);

  const shutdown = async () => {
    const closing = proxy.close(SHUTDOWN_DEADLINE_MS); // stops accepting before it returns
    console.error('shutting down: no new clients, finishing open connections');
    await closing;
    process.exit(0);
  };
  process.once('SIGTERM', shutdown);
  process.once('SIGINT', shutdown);
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
    console.log(`listening on ${formatAddress(proxy.address)}`);
    if (config.admin) await announceAdmin(config, async () => proxy.status());
    announcePid();
  } else {
    // The primary asks each worker for its numbers and adds them up.
    process.on('message', (message: { statusRequest?: number }) => {
      if (message.statusRequest !== undefined) process.send!({ statusReply: message.statusRequest, status: proxy.status() });
    });
    process.send!({ listening: proxy.address });
  }
}

/** Starts the admin listener and says where it is: "status on http://HOST:PORT/". */
async function announceAdmin(config: ProxyConfig, status: () => Promise<ProxyStatus>): Promise<void> {
  const admin = await startAdmin(config.admin!, status);
  console.log(`status on http://${formatAddress(admin.address)}/`);
}

/** The whole proxy's status: every worker's, gathered over IPC and merged (workers that do not answer in time are left out). */
function workersStatus(): Promise<ProxyStatus> {
  const id = nextRequest++;
  const workers = Object.values(cluster.workers ?? {}).filter((w) => w !== undefined && w.isConnected());
  return new Promise((resolve, reject) => {
    const replies: ProxyStatus[] = [];
    const done = () => {
      clearTimeout(timer);
      cluster.off('message', onMessage);
      if (replies.length === 0) reject(new Error('no worker answered'));
      else resolve(mergeStatuses(replies));
    };
    const onMessage = (_worker: unknown, message: { statusReply?: number; status?: ProxyStatus }) => {
      if (message.statusReply === id && message.status) replies.push(message.status);
      if (replies.length === workers.length) done();
    };
    const timer = setTimeout(done, 1000);
    cluster.on('message', onMessage);
    for (const worker of workers) worker!.send({ statusRequest: id });
  });
}
let nextRequest = 0;

/** The primary: forks the workers, relays signals, and speaks for them. */
function supervise(config: ProxyConfig): void {
  let listening = 0;
  let stopping = false;
  const fork = () => cluster.fork();
  for (let i = 0; i < config.workers; i++) fork();
  cluster.on('message', (_worker, message: { listening?: { host: string; port: number } }) => {
    // Ready means every worker is ready: each one's signal handlers are in place by now.
    if (message.listening && ++listening === config.workers) {
      console.log(`listening on ${formatAddress(message.listening)}`);
      const announced = config.admin ? announceAdmin(config, workersStatus) : Promise.resolve();
      announced.then(announcePid, (err: Error) => {
        console.error(`error: admin listener: ${err.message}`);
        stop();
      });
    }
  });
  cluster.on('exit', (worker, code, signal) => {
    if (stopping) {
      if (Object.keys(cluster.workers ?? {}).length === 0) process.exit(0);
      return;
    }
    console.error(`worker ${worker.process.pid} died (${signal ?? code}); starting another`);
    fork();
  });
  const stop = () => {
    stopping = true;
    for (const worker of Object.values(cluster.workers ?? {})) worker?.process.kill('SIGTERM');
  };
  process.once('SIGTERM', stop);
  process.once('SIGINT', stop);
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
  console.error(`error: ${err.message}`);
  process.exit(err.code === 'EADDRINUSE' || err.code === 'EADDRNOTAVAIL' || err.code === 'EACCES' ? 2 : 1);
});
