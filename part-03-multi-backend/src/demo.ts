// `npm start`: three demo backends (alpha, beta, gamma) and the proxy over them, with what to curl.
import http from 'node:http';
import { once } from 'node:events';
import { parseArgs } from 'node:util';
import { startProxy } from './proxy.ts';
import { formatAddress, parseAddress } from './address.ts';
import { DEFAULTS } from './config.ts';
import { STRATEGY_NAMES, type StrategyName } from './strategies/index.ts';

const { values } = parseArgs({
  options: {
    listen: { type: 'string', default: '127.0.0.1:8080' },
    strategy: { type: 'string', default: 'round-robin' },
  },
});
if (!(STRATEGY_NAMES as readonly string[]).includes(values.strategy)) {
  console.error(`error: --strategy must be one of ${STRATEGY_NAMES.join(', ')}`);
  process.exit(2);
}

const names = ['alpha', 'beta', 'gamma'];
const backends = await Promise.all(
  names.map(async (name) => {
    const server = http.createServer((req, res) => res.end(`${name} answered ${req.method} ${req.url}\n`));
    server.listen(0, '127.0.0.1');
    await once(server, 'listening');
    return server;
  }),
);

const proxy = await startProxy({
  listen: parseAddress(values.listen),
  strategy: values.strategy as StrategyName,
  connectTimeoutMs: DEFAULTS.connectTimeoutMs,
  backends: backends.map((server) => ({
    address: { host: '127.0.0.1', port: (server.address() as { port: number }).port },
    weight: 1,
    maxFails: DEFAULTS.maxFails,
    failTimeoutMs: DEFAULTS.failTimeoutMs,
  })),
}).catch(explainListenError);
const at = formatAddress(proxy.address);
console.log(`listening on ${at}`);
console.log(`backends: ${proxy.pool.backends.map((b, i) => `${names[i]} on ${b.name}`).join(', ')}; strategy ${values.strategy}`);
console.log('Try (each curl is a new connection, so each is balanced on its own):');
console.log(`  for i in 1 2 3; do curl -s http://${at}/; done`);
console.log('And one keep-alive connection with three requests (all land on one backend; see part 4):');
console.log(`  curl -s http://${at}/1 http://${at}/2 http://${at}/3`);

const shutdown = async () => {
  await proxy.close(1000);
  for (const server of backends) server.close();
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
