// `npm start`: demo backends behind two virtual hosts, with what to curl, and a lab: the status
// page (--admin, 127.0.0.1:8081 unless told otherwise) can stop, start, slow down or break each
// demo backend, to watch health checks, passive health, retries and balancing react.
import http from 'node:http';
import { once } from 'node:events';
import { parseFlags, UsageError, type ProxyConfig } from './cli.ts';
import { startProxy } from './proxy.ts';
import { formatAddress, parseAddress, type Address } from './address.ts';
import { processStatus } from './observe/metrics.ts';
import { validateConfig } from './config.ts';
import { startAdmin, type Lab } from './observe/admin.ts';
import { demoCertificate } from './tls/demo-certificate.ts';

const SHUTDOWN_DEADLINE_MS = 10_000; // as main.ts's, and longer than /slow: Ctrl-C lets it finish
const MAIN = 'npx tsx part-05-benchmarks/src/main.ts --config FILE --workers N (or --listen HOST:PORT --backend HOST:PORT ...)';
/** main.ts's flags that the demo cannot honour, and why. */
const MAIN_ONLY: Record<string, string> = {
  '--backend': 'it brings its own backends',
  '--config': 'it brings its own backends',
  '--workers': 'it runs in one process, with its backends',
};
const usage = [
  'usage: npm start -- [--listen HOST:PORT] [--admin HOST:PORT] [--access-log FILE|-] [--tls]',
  '       [--strategy round-robin|random|least-connections|power-of-two]',
  '       [--connect-timeout MS] [--response-timeout MS] [--client-header-timeout MS] [--keepalive-timeout MS]',
  '       [--client-body-timeout MS] [--tunnel-idle-timeout MS] [--client-max-body-size BYTES (0: no limit)]',
  '       (defaults: 127.0.0.1:8080, or 127.0.0.1:8443 with --tls (a localhost certificate made with openssl),',
  '       the status page on 127.0.0.1:8081, the access log on stdout;',
  '       four demo backends and two virtual hosts come with it)',
  `In front of your own backends, from the repository root: ${MAIN}`,
].join('\n');

type Mode = 'normal' | 'slow' | 'fail' | 'stopped';

/** A demo backend that says who it is and echoes the headers it received; /slow answers after 2 s. */
class DemoBackend {
  mode: Mode = 'normal';
  address = '';
  private server = this.create();

  constructor(readonly label: string) {}

  async start(): Promise<void> {
    const port = this.address ? parseAddress(this.address).port : 0;
    this.server.listen(port, '127.0.0.1');
    await once(this.server, 'listening');
    this.address = `127.0.0.1:${(this.server.address() as { port: number }).port}`;
    this.mode = 'normal';
  }

  stop(): void {
    this.mode = 'stopped';
    this.server.close();
    this.server.closeAllConnections(); // keep-alive connections from the proxy too: as if the process died
    this.server = this.create();
  }

  private create(): http.Server {
    return http.createServer((req, res) => {
      const echoed = Object.entries(req.headers).map(([name, value]) => `  ${name}: ${String(value)}`).join('\n');
      const reply = () => {
        res.writeHead(this.mode === 'fail' ? 500 : 200, { 'content-type': 'text/plain' });
        res.end(`${this.label} answered ${req.method} ${req.url}${this.mode === 'fail' ? ' with a 500 (lab)' : ''}\nheaders it received:\n${echoed}\n`);
      };
      if (req.url === '/slow' || this.mode === 'slow') setTimeout(reply, 2000);
      else reply();
    });
  }
}

const demo = ['www-1', 'www-2', 'api-1', 'api-2'].map((label) => new DemoBackend(label));
for (const backend of demo) await backend.start();
const [www1, www2, api1, api2] = demo.map((b) => b.address);

// main.ts's flags set the listener, the strategy, the timeouts and what to watch; the demo adds
// its virtual hosts, and health checks so that a stopped backend is out within 2 s, as HAProxy's.
const tls = process.argv.includes('--tls') ? tlsFlags() : undefined;
const flags = demoFlags(process.argv.slice(2).filter((arg) => arg !== '--tls'), demo.slice(0, 2).flatMap((b) => ['--backend', b.address]), tls?.flags);
const { upstreams, virtualHosts, healthCheck } = validateConfig({
  listen: formatAddress(flags.listen),
  strategy: flags.strategy,
  backends: [{ address: www1, name: 'www-1' }, { address: www2, name: 'www-2' }],
  upstreams: { api: { strategy: 'least-connections', backends: [{ address: api1, name: 'api-1' }, { address: api2, name: 'api-2' }] } },
  virtualHosts: [{ serverNames: ['api.localhost', '*.api.localhost'], upstream: 'api' }],
  healthCheck: { intervalMs: 1000, timeoutMs: 1000, rise: 2, fall: 2 },
});
// With --tls, the access log also says which protocol and cipher each request came over.
const config: ProxyConfig = { ...flags, upstreams, virtualHosts, healthCheck, tls: { ...flags.tls, logProtocol: tls !== undefined } };
const proxy = await startProxy(config).catch((err: NodeJS.ErrnoException) => explainListenError(err, config.listen, '--listen'));

const lab: Lab = {
  act(address, action) {
    const backend = demo.find((b) => b.address === address);
    if (!backend) return `no demo backend at ${address}`;
    const said = (what: string) => console.error(`lab: ${backend.label} (${address}) ${what}`);
    if (action === 'start') {
      if (backend.mode !== 'stopped') return `${backend.label} is running already`;
      backend.start().then(() => said('started again'), (err: Error) => said(`cannot start again: ${err.message}`));
      return undefined;
    }
    if (action === 'stop') backend.stop();
    else if (action === 'slow' || action === 'fail' || action === 'normal') {
      if (backend.mode === 'stopped') return `${backend.label} is stopped: start it first`;
      backend.mode = action;
    } else return `unknown action ${action}: stop, start, slow, fail or normal`;
    said(`is now ${backend.mode}`);
    return undefined;
  },
};
const admin = await startAdmin(
  config.admin!,
  async () => ({ ...proxy.status(), processes: [processStatus()], lab: demo.map((b) => ({ backend: b.address, label: b.label, mode: b.mode })) }),
  lab,
).catch((err: NodeJS.ErrnoException) => explainListenError(err, config.admin!, '--admin'));
const at = formatAddress(proxy.address);
// With TLS, curl checks the certificate against the demo's CA, for the name it was made for.
const curl = tls ? `curl --cacert ${tls.ca}` : 'curl';
const url = tls ? `https://${at.replace('127.0.0.1', 'localhost')}` : `http://${at}`;

let stopping = false;
const shutdown = async () => {
  if (stopping) return; // one Ctrl-C can arrive twice: from the terminal, and relayed by tsx or npm
  stopping = true;
  console.error('shutting down: no new clients, finishing open connections');
  await admin.close();
  await proxy.close(SHUTDOWN_DEADLINE_MS);
  for (const backend of demo) backend.stop(); // only now: the drain needs them
  process.exit(0);
};
process.on('SIGTERM', shutdown);
process.on('SIGINT', shutdown);

console.log(`listening on ${at}`);
console.log(`status on http://${formatAddress(admin.address)}/   (open it in a browser: the lab buttons are there)`);
console.log(`upstreams: default = www-1, www-2 (${config.strategy}); api = api-1, api-2 (least-connections) for api.localhost`);
if (tls) console.log(`TLS: a certificate for localhost, signed by the CA in ${tls.ca}; curl trusts it with --cacert (a browser: import it as an authority)`);
console.log('Try:');
console.log(`  ${curl} -s ${url}/a ${url}/b ${url}/c      # one connection, balanced per request`);
console.log(`  ${curl} -s -H 'Host: api.localhost' ${url}/users       # the api virtual host`);
console.log(`  ${curl} -s -H 'Host: v2.api.localhost' ${url}/users    # matches *.api.localhost`);
console.log(`  ${curl} -si ${url}/ | head -20                         # Via, and the headers the backend received`);
console.log(`  curl -s http://${formatAddress(admin.address)}/metrics | grep lb_backend_requests   # Prometheus`);
console.log(`The access log ${config.accessLog === '-' ? 'follows on stdout' : `goes to ${config.accessLog}`}, one line per request.`);

/** main.ts's flags, less those the demo cannot honour; --help and mistakes end the process here. */
function demoFlags(argv: string[], backendFlags: string[], tlsDefaults: string[] = []): ProxyConfig {
  if (argv.includes('--help')) {
    console.log(usage);
    process.exit(0);
  }
  const flag = Object.keys(MAIN_ONLY).find((name) => argv.some((arg) => arg === name || arg.startsWith(`${name}=`)));
  if (flag) fail(`${flag} is not for the demo (${MAIN_ONLY[flag]}). From the repository root: ${MAIN}`);
  try {
    return parseFlags(['--listen', '127.0.0.1:8080', '--admin', '127.0.0.1:8081', '--access-log', '-', ...tlsDefaults, ...argv, ...backendFlags]);
  } catch (err) {
    if (!(err instanceof UsageError)) throw err;
    return fail(`${err.message} (npm start -- --help lists the flags)`);
  }
}

/** --tls: the listener's default moves to 8443 and speaks TLS, with the demo's localhost certificate. */
function tlsFlags(): { flags: string[]; ca: string } {
  try {
    const made = demoCertificate();
    // Before the reader's own flags, so that their --listen wins.
    return { flags: ['--listen', '127.0.0.1:8443', '--tls-cert', made.cert, '--tls-key', made.key], ca: made.ca };
  } catch (err) {
    return fail((err as Error).message);
  }
}

function fail(message: string): never {
  console.error(`error: ${message}`);
  process.exit(2);
}

/** A busy port is the usual first stumble: say so in one line, with the way out. */
function explainListenError(err: NodeJS.ErrnoException, address: Address, flag: string): never {
  if (err.code !== 'EADDRINUSE' && err.code !== 'EACCES') throw err;
  const why = err.code === 'EADDRINUSE' ? 'something else is listening there' : 'permission denied';
  // Not the port that failed: near it, and above the privileged ones.
  const other = { host: address.host, port: address.port < 1024 ? 8080 : address.port <= 65525 ? address.port + 10 : address.port - 10 };
  fail(`cannot listen on ${formatAddress(address)}: ${why}. Pick another port: npm start -- ${flag} ${formatAddress(other)}`);
}
