// The baseline "use a library" proxy: http-proxy with a keep-alive agent, round-robin.
import http from 'node:http';
import httpProxy from 'http-proxy';

const backends = process.argv.slice(2).map((address) => `http://${address}`);
const agent = new http.Agent({ keepAlive: true, maxSockets: 256 });
const proxy = httpProxy.createProxyServer({ agent, xfwd: true });
proxy.on('error', (_err, _req, res) => {
  if ('writeHead' in res && !res.headersSent) res.writeHead(502);
  res.end();
});
let next = 0;
const server = http.createServer((req, res) => {
  const target = backends[next++ % backends.length]!;
  proxy.web(req, res, { target });
});
server.listen(0, '127.0.0.1', () => {
  console.log(`listening on 127.0.0.1:${(server.address() as { port: number }).port}`);
});
