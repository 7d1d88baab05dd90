// `npm start`: a demo backend and the proxy in front of it, with what to curl.
import http from 'node:http';
import { once } from 'node:events';
import { parseFlags, UsageError, type ProxyConfig } from './cli.ts';
import { startProxy } from './proxy.ts';
import { formatAddress, type Address } from './address.ts';

const SHUTDOWN_DEADLINE_MS = 10_000; // as main.ts's, and longer than /slow: Ctrl-C lets it finish
const MAIN = 'npx tsx part-02-event-loop/src/main.ts --listen HOST:PORT --backend HOST:PORT';
/** main.ts's flags that the demo cannot honour, and why. */
const MAIN_ONLY: Record<string, string> = { '--backend': 'it brings its own backend' };
const usage = [
  'usage: npm start -- [--listen HOST:PORT]   (default 127.0.0.1:8080; a demo backend comes with it)',
  `In front of your own backend, from the repository root: ${MAIN}`,
].join('\n');

// The backend answers slowly on /slow: the second curl no longer waits for the first.
const backend = http.createServer((req, res) => {
  const delayMs = req.url === '/slow' ? 3000 : 0;
  setTimeout(() => res.end(`hello from the demo backend (${req.method} ${req.url})\n`), delayMs);
});
backend.listen(0, '127.0.0.1');
await once(backend, 'listening');
const { port } = backend.address() as { port: number };

const config = demoFlags(process.argv.slice(2), ['--backend', `127.0.0.1:${port}`]);
const proxy = await startProxy(config).catch((err: NodeJS.ErrnoException) => explainListenError(err, config.listen));
const at = formatAddress(proxy.address);
console.log(`listening on ${at}`);
console.log(`demo backend on 127.0.0.1:${port}. Try:`);
console.log(`  curl http://${at}/`);
console.log(`  curl http://${at}/slow & curl http://${at}/   # the second answers at once`);

let stopping = false;
const shutdown = async () => {
  if (stopping) return; // one Ctrl-C can arrive twice: from the terminal, and relayed by tsx or npm
  stopping = true;
  console.error('shutting down: no new clients, finishing open connections');
  await proxy.close(SHUTDOWN_DEADLINE_MS);
  backend.close(); // only now: the drain needs it
  process.exit(0);
};
process.on('SIGTERM', shutdown);
process.on('SIGINT', shutdown);

/** main.ts's flags, less those the demo cannot honour; --help and mistakes end the process here. */
function demoFlags(argv: string[], backendFlags: string[]): ProxyConfig {
  if (argv.includes('--help')) {
    console.log(usage);
    process.exit(0);
  }
  const flag = Object.keys(MAIN_ONLY).find((name) => argv.some((arg) => arg === name || arg.startsWith(`${name}=`)));
  if (flag) fail(`${flag} is not for the demo (${MAIN_ONLY[flag]}). From the repository root: ${MAIN}`);
  try {
    return parseFlags(['--listen', '127.0.0.1:8080', ...argv, ...backendFlags]);
  } catch (err) {
    if (!(err instanceof UsageError)) throw err;
    return fail(`${err.message} (npm start -- --help lists the flags)`);
  }
}

function fail(message: string): never {
  console.error(`error: ${message}`);
  process.exit(2);
}

/** A busy port is the usual first stumble: say so in one line, with the way out. */
function explainListenError(err: NodeJS.ErrnoException, address: Address): never {
  if (err.code !== 'EADDRINUSE' && err.code !== 'EACCES') throw err;
  const why = err.code === 'EADDRINUSE' ? 'something else is listening there' : 'permission denied';
  // Not the port that failed: near it, and above the privileged ones.
  const other = { host: address.host, port: address.port < 1024 ? 8080 : address.port <= 65525 ? address.port + 10 : address.port - 10 };
  fail(`cannot listen on ${formatAddress(address)}: ${why}. Pick another port: npm start -- --listen ${formatAddress(other)}`);
}
