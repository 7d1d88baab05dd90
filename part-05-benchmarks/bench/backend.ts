// A benchmark backend in its own process: "/" answers 13 bytes, "/64k" answers 64 KiB.
import http from 'node:http';

const small = Buffer.from('hello world!\n');
const large = Buffer.alloc(64 * 1024, 'x');
const port = Number(process.argv[2] ?? 0);

const server = http.createServer((req, res) => {
  const body = req.url === '/64k' ? large : small;
  res.writeHead(200, { 'content-type': 'text/plain', 'content-length': body.length });
  res.end(body);
});
server.keepAliveTimeout = 65_000; // longer than any proxy's idle timeout, as production backends are
server.listen(port, '127.0.0.1', () => {
  console.log(`listening on 127.0.0.1:${(server.address() as { port: number }).port}`);
});
