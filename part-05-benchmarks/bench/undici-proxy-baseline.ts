// The bare Node.js proxy: a node:http server and undici's connection Pool, the engine of the
// fastest Node.js proxy libraries, with round-robin over the backends and nothing else.
import http from 'node:http';
import { Pool } from 'undici';

/** Connection-level fields: never forwarded (and undici refuses some of them). */
const HOP_BY_HOP = new Set(['connection', 'keep-alive', 'proxy-connection', 'te', 'trailer', 'transfer-encoding', 'upgrade', 'expect']);

const pools = process.argv.slice(2).map((address) => new Pool(`http://${address}`, { connections: 256 }));
let next = 0;

function endToEnd(headers: http.IncomingHttpHeaders | Record<string, string | string[] | undefined>): Record<string, string | string[]> {
  const kept: Record<string, string | string[]> = {};
  for (const [name, value] of Object.entries(headers)) if (value !== undefined && !HOP_BY_HOP.has(name)) kept[name] = value;
  return kept;
}

const server = http.createServer((req, res) => {
  const pool = pools[next++ % pools.length]!;
  const bodiless = req.method === 'GET' || req.method === 'HEAD';
  pool.stream(
    { path: req.url ?? '/', method: req.method as 'GET', headers: endToEnd(req.headers), body: bodiless ? null : req },
    ({ statusCode, headers }) => {
      res.writeHead(statusCode, endToEnd(headers));
      return res;
    },
    (err) => {
      if (!err) return;
      if (!res.headersSent) res.writeHead(502);
      res.end();
    },
  );
});
server.listen(0, '127.0.0.1', () => {
  console.log(`listening on 127.0.0.1:${(server.address() as { port: number }).port}`);
});
