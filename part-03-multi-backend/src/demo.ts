// `npm start`: three demo backends (alpha, beta, gamma) and the proxy over them, with what to curl.
import http from 'node:http';
import { once } from 'node:events';
import { parseFlags, UsageError, type ProxyConfig } from './cli.ts';
import { startProxy } from './proxy.ts';
import { formatAddress, type Address } from './address.ts';

const SHUTDOWN_DEADLINE_MS = 10_000; // as main.ts's: Ctrl-C lets open connections finish
const MAIN = 'npx tsx part-03-multi-backend/src/main.ts --config FILE (or --listen HOST:PORT --backend HOST:PORT ...)';
/** main.ts's flags that the demo cannot honour, and why. */
const MAIN_ONLY: Record<string, string> = { '--backend': 'it brings its own backends', '--config': 'it brings its own backends' };
const usage = [
  'usage: npm start -- [--listen HOST:PORT] [--strategy round-robin|random|least-connections|power-of-two] [--connect-timeout MS]',
  '       (default 127.0.0.1:8080, round-robin; three demo backends come with it)',
  `In front of your own backends, from the repository root: ${MAIN}`,
].join('\n');

const names = ['alpha', 'beta', 'gamma'];
const backends = await Promise.all(
  names.map(async (name) => {
    const server = http.createServer((req, res) => res.end(`${name} answered ${req.method} ${req.url}\n`));
    server.listen(0, '127.0.0.1');
    await once(server, 'listening');
    return server;
  }),
);

const config = demoFlags(
  process.argv.slice(2),
  backends.flatMap((server) => ['--backend', `127.0.0.1:${(server.address() as { port: number }).port}`]),
);
const proxy = await startProxy(config).catch((err: NodeJS.ErrnoException) => explainListenError(err, config.listen));
const at = formatAddress(proxy.address);
console.log(`listening on ${at}`);
console.log(`backends: ${proxy.peers.backends.map((b, i) => `${names[i]} on ${b.name}`).join(', ')}; strategy ${config.strategy}`);
console.log('Try (each curl is a new connection, so each is balanced on its own):');
console.log(`  for i in 1 2 3; do curl -s http://${at}/; done`);
console.log('And one keep-alive connection with three requests (all land on one backend; see part 4):');
console.log(`  curl -s http://${at}/1 http://${at}/2 http://${at}/3`);

let stopping = false;
const shutdown = async () => {
  if (stopping) return; // one Ctrl-C can arrive twice: from the terminal, and relayed by tsx or npm
  stopping = true;
  console.error('shutting down: no new clients, finishing open connections');
  await proxy.close(SHUTDOWN_DEADLINE_MS);
  for (const server of backends) server.close(); // only now: the drain needs them
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
