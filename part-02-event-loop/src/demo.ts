// `npm start`: a demo backend and the proxy in front of it, with what to curl.
import http from 'node:http';
import { once } from 'node:events';
import { parseArgs } from 'node:util';
import { startProxy } from './proxy.ts';
import { formatAddress, parseAddress } from './address.ts';

const { values } = parseArgs({ options: { listen: { type: 'string', default: '127.0.0.1:8080' } } });
const listen = parseAddress(values.listen);

// The backend answers slowly on /slow: the second curl no longer waits for the first.
const backend = http.createServer((req, res) => {
  const delayMs = req.url === '/slow' ? 3000 : 0;
  setTimeout(() => res.end(`hello from the demo backend (${req.method} ${req.url})\n`), delayMs);
});
backend.listen(0, '127.0.0.1');
await once(backend, 'listening');
const { port } = backend.address() as { port: number };

const proxy = await startProxy({ listen, backend: { host: '127.0.0.1', port } }).catch(explainListenError);
const at = formatAddress(proxy.address);
console.log(`listening on ${at}`);
console.log(`demo backend on 127.0.0.1:${port}. Try:`);
console.log(`  curl http://${at}/`);
console.log(`  curl http://${at}/slow & curl http://${at}/   # the second answers at once`);

const shutdown = async () => {
  await proxy.close(1000);
  backend.close();
  process.exit(0);
};
process.once('SIGTERM', shutdown);
process.once('SIGINT', shutdown);

/** A busy port is the usual first stumble: say so in one line, with the way out. */
function explainListenError(err: NodeJS.ErrnoException): never {
  if (err.code !== 'EADDRINUSE' && err.code !== 'EACCES') throw err;
  const why = err.code === 'EADDRINUSE' ? 'something else is listening there' : 'permission denied';
  console.error(`error: cannot listen on ${values.listen}: ${why}. Pick another port: npm start -- --listen 127.0.0.1:8090`);
  process.exit(2);
}
