// `npm start`: demo backends behind two virtual hosts, with what to curl.
import http from 'node:http';
import { once } from 'node:events';
import { parseFlags, UsageError, type ProxyConfig } from './cli.ts';
import { startProxy } from './proxy.ts';
import { formatAddress, type Address } from './address.ts';
import { validateConfig } from './config.ts';

const SHUTDOWN_DEADLINE_MS = 10_000; // as main.ts's, and longer than /slow: Ctrl-C lets it finish
const MAIN = 'npx tsx part-04-keepalive/src/main.ts --config FILE (or --listen HOST:PORT --backend HOST:PORT ...)';
/** main.ts's flags that the demo cannot honour, and why. */
const MAIN_ONLY: Record<string, string> = { '--backend': 'it brings its own backends', '--config': 'it brings its own backends' };
const usage = [
  'usage: npm start -- [--listen HOST:PORT] [--strategy round-robin|random|least-connections|power-of-two]',
  '       [--connect-timeout MS] [--response-timeout MS] [--client-header-timeout MS] [--keepalive-timeout MS]',
  '       [--client-body-timeout MS] [--tunnel-idle-timeout MS] [--client-max-body-size BYTES (0: no limit)]',
  '       (default 127.0.0.1:8080; four demo backends and two virtual hosts come with it)',
  `In front of your own backends, from the repository root: ${MAIN}`,
].join('\n');

/** A demo backend that says who it is; /slow answers after 2 seconds. */
async function demoBackend(name: string): Promise<string> {
  const server = http.createServer((req, res) => {
    const reply = () => res.end(`${name} answered ${req.method} ${req.url} for host ${req.headers.host}\n`);
    if (req.url === '/slow') setTimeout(reply, 2000);
    else reply();
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  backends.push(server);
  return `127.0.0.1:${(server.address() as { port: number }).port}`;
}
const backends: http.Server[] = [];

const www = [await demoBackend('www-1'), await demoBackend('www-2')];
// main.ts's flags set the listener, the strategy and the timeouts; the demo adds its virtual hosts.
const flags = demoFlags(process.argv.slice(2), www.flatMap((address) => ['--backend', address]));
const { upstreams, virtualHosts } = validateConfig({
  listen: formatAddress(flags.listen),
  strategy: flags.strategy,
  backends: www.map((address) => ({ address })),
  upstreams: {
    api: { strategy: 'least-connections', backends: [{ address: await demoBackend('api-1') }, { address: await demoBackend('api-2') }] },
  },
  virtualHosts: [{ serverNames: ['api.localhost', '*.api.localhost'], upstream: 'api' }],
});
const config: ProxyConfig = { ...flags, upstreams, virtualHosts };
const proxy = await startProxy(config).catch((err: NodeJS.ErrnoException) => explainListenError(err, config.listen));
const at = formatAddress(proxy.address);

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

console.log(`listening on ${at}`);
console.log(`upstreams: default = www-1, www-2 (${config.strategy}); api = api-1, api-2 (least-connections) for api.localhost`);
console.log('Try:');
console.log(`  curl -s http://${at}/a http://${at}/b http://${at}/c      # one connection, balanced per request`);
console.log(`  curl -s -H 'Host: api.localhost' http://${at}/users       # the api virtual host`);
console.log(`  curl -s -H 'Host: v2.api.localhost' http://${at}/users    # matches *.api.localhost`);
console.log(`  curl -si http://${at}/ | head -20                         # see Via and the headers`);

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
