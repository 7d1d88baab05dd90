// `npm start`: demo backends behind two virtual hosts, with what to curl, and a lab: the status
// page (--admin, 127.0.0.1:8081 unless told otherwise) can stop, start, slow down or break each
// demo backend, to watch passive health, retries and balancing react.
import http from 'node:http';
import { once } from 'node:events';
import { parseArgs } from 'node:util';
import { startProxy } from './proxy.ts';
import { formatAddress, parseAddress } from './address.ts';
import { validateConfig } from './config.ts';
import { startAdmin, type Lab } from './admin.ts';

const { values } = parseArgs({
  options: {
    listen: { type: 'string', default: '127.0.0.1:8080' },
    admin: { type: 'string', default: '127.0.0.1:8081' },
    'access-log': { type: 'string', default: '-' },
  },
});

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

const config = validateConfig({
  listen: values.listen,
  backends: [{ address: www1 }, { address: www2 }],
  upstreams: { api: { strategy: 'least-connections', backends: [{ address: api1 }, { address: api2 }] } },
  virtualHosts: [{ serverNames: ['api.localhost', '*.api.localhost'], upstream: 'api' }],
  admin: values.admin,
  accessLog: values['access-log'],
});
const proxy = await startProxy(config).catch((err: NodeJS.ErrnoException) => explainListenError(err, values.listen, '--listen'));

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
  async () => ({ ...proxy.status(), lab: demo.map((b) => ({ backend: b.address, label: b.label, mode: b.mode })) }),
  lab,
).catch((err: NodeJS.ErrnoException) => explainListenError(err, values.admin, '--admin'));
const at = formatAddress(proxy.address);

const shutdown = async () => {
  await admin.close();
  await proxy.close(1000);
  for (const backend of demo) backend.stop();
  process.exit(0);
};
process.once('SIGTERM', shutdown);
process.once('SIGINT', shutdown);

console.log(`listening on ${at}`);
console.log(`status on http://${formatAddress(admin.address)}/   (open it in a browser: the lab buttons are there)`);
console.log('upstreams: default = www-1, www-2 (round-robin); api = api-1, api-2 (least-connections) for api.localhost');
console.log('Try:');
console.log(`  curl -s http://${at}/a http://${at}/b http://${at}/c      # one connection, balanced per request`);
console.log(`  curl -s -H 'Host: api.localhost' http://${at}/users       # the api virtual host`);
console.log(`  curl -s -H 'Host: v2.api.localhost' http://${at}/users    # matches *.api.localhost`);
console.log(`  curl -si http://${at}/ | head -20                         # Via, and the headers the backend received`);
console.log(`  curl -s http://${formatAddress(admin.address)}/metrics | grep lb_backend_requests   # Prometheus`);
console.log('The access log follows on stdout, one line per request.');

/** A busy port is the usual first stumble: say so in one line, with the way out. */
function explainListenError(err: NodeJS.ErrnoException, address: string, flag: string): never {
  if (err.code !== 'EADDRINUSE' && err.code !== 'EACCES') throw err;
  const why = err.code === 'EADDRINUSE' ? 'something else is listening there' : 'permission denied';
  console.error(`error: cannot listen on ${address}: ${why}. Pick another port: npm start -- ${flag} 127.0.0.1:8090`);
  process.exit(2);
}
