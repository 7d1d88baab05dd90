// Entry point: flags in, "listening on HOST:PORT" out, clean exit on SIGTERM/SIGINT.
import { parseFlags, UsageError, usage } from './cli.ts';
import { startProxy } from './proxy.ts';
import { formatAddress } from './address.ts';

const SHUTDOWN_DEADLINE_MS = 10_000;

async function main(): Promise<void> {
  if (process.argv.slice(2).includes('--help')) {
    console.log(usage);
    process.exit(0);
  }
  let config;
  try {
    config = parseFlags(process.argv.slice(2));
  } catch (err) {
    if (!(err instanceof UsageError)) throw err;
    console.error(`error: ${err.message}\n${usage}`);
    process.exit(2);
  }

  const proxy = await startProxy(config);

  let stopping = false;
  const shutdown = async () => {
    if (stopping) return; // one Ctrl-C can arrive twice: from the terminal, and relayed by tsx or npm
    stopping = true;
    const closing = proxy.close(SHUTDOWN_DEADLINE_MS); // stops accepting before it returns
    console.error('shutting down: no new clients, finishing the current one');
    await closing;
    process.exit(0);
  };
  process.on('SIGTERM', shutdown);
  process.on('SIGINT', shutdown);
  // Only now: whoever reads this line may signal us at once, and the handlers must be there.
  console.log(`listening on ${formatAddress(proxy.address)}`);
}

main().catch((err: NodeJS.ErrnoException) => {
  // Listening failures (port in use, bad host) are configuration mistakes too.
  console.error(`error: ${err.message}`);
  process.exit(err.code === 'EADDRINUSE' || err.code === 'EADDRNOTAVAIL' || err.code === 'EACCES' ? 2 : 1);
});
