// `npm start`: demo backends behind two virtual hosts, with what to curl.
import http from 'node:http';
import { once } from 'node:events';
import { parseArgs } from 'node:util';
import { startProxy } from './proxy.ts';
import { formatAddress } from './address.ts';
import { validateConfig } from './config.ts';

const { values } = parseArgs({ options: { listen: { type: 'string', default: '127.0.0.1:8080' } } });

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

const config = validateConfig({
  listen: values.listen,
  backends: [{ address: await demoBackend('www-1') }, { address: await demoBackend('www-2') }],
  upstreams: {
    api: { strategy: 'least-connections', backends: [{ address: await demoBackend('api-1') }, { address: await demoBackend('api-2') }] },
  },
  virtualHosts: [{ serverNames: ['api.localhost', '*.api.localhost'], upstream: 'api' }],
});
const proxy = await startProxy(config).catch(explainListenError);
const at = formatAddress(proxy.address);

const shutdown = async () => {
  await proxy.close(1000);
  for (const server of backends) server.close();
  process.exit(0);
};
process.once('SIGTERM', shutdown);
process.once('SIGINT', shutdown);

console.log(`listening on ${at}`);
console.log('upstreams: default = www-1, www-2 (round-robin); api = api-1, api-2 (least-connections) for api.localhost');
console.log('Try:');
console.log(`  curl -s http://${at}/a http://${at}/b http://${at}/c      # one connection, balanced per request`);
console.log(`  curl -s -H 'Host: api.localhost' http://${at}/users       # the api virtual host`);
console.log(`  curl -s -H 'Host: v2.api.localhost' http://${at}/users    # matches *.api.localhost`);
console.log(`  curl -si http://${at}/ | head -20                         # see Via and the headers`);

/** A busy port is the usual first stumble: say so in one line, with the way out. */
function explainListenError(err: NodeJS.ErrnoException): never {
  if (err.code !== 'EADDRINUSE' && err.code !== 'EACCES') throw err;
  const why = err.code === 'EADDRINUSE' ? 'something else is listening there' : 'permission denied';
  console.error(`error: cannot listen on ${values.listen}: ${why}. Pick another port: npm start -- --listen 127.0.0.1:8090`);
  process.exit(2);
}
