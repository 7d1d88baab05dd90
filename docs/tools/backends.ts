// `npm run backends -- 9001 9002 9003`: one small HTTP backend per port, each in its own
// process, so that one can be stopped (kill -STOP), killed or restarted without touching the
// proxy or the others. Each answers with its name, the method, the path and the headers it got.
import { spawn, type ChildProcess } from 'node:child_process';
import http from 'node:http';

const usage = 'usage: npm run backends -- PORT [PORT ...]   (e.g. 9001 9002 9003; Ctrl-C stops them all)';
const args = process.argv.slice(2);

if (args[0] === '--serve') {
  serve(Number(args[1]));
} else {
  if (args.includes('--help')) {
    console.log(usage);
    process.exit(0);
  }
  const ports = args.map(Number);
  if (ports.length === 0 || ports.some((p) => !Number.isInteger(p) || p < 1 || p > 65535)) {
    console.error(`error: expected port numbers, got ${args.length ? args.join(' ') : 'nothing'}\n${usage}`);
    process.exit(2);
  }
  const children: ChildProcess[] = ports.map((port) =>
    spawn(process.execPath, [...process.execArgv, process.argv[1]!, '--serve', String(port)], { stdio: 'inherit' }),
  );
  const stop = () => {
    for (const child of children) child.kill('SIGTERM');
    process.exit(0);
  };
  process.once('SIGINT', stop);
  process.once('SIGTERM', stop);
  for (const child of children) child.once('exit', (code) => code === 2 && stop());
}

/** One backend, in this process. */
function serve(port: number): void {
  const name = `backend-${port}`;
  const server = http.createServer((req, res) => {
    req.resume();
    const headers = Object.entries(req.headers).map(([k, v]) => `  ${k}: ${Array.isArray(v) ? v.join(', ') : v}`);
    res.setHeader('content-type', 'text/plain; charset=utf-8');
    res.end(`${name} answered ${req.method} ${req.url}\nheaders it received:\n${headers.join('\n')}\n`);
  });
  server.once('error', (err: NodeJS.ErrnoException) => {
    console.error(`error: ${name} cannot listen on 127.0.0.1:${port}: ${err.code === 'EADDRINUSE' ? 'the port is in use' : err.message}`);
    process.exit(2);
  });
  server.listen(port, '127.0.0.1', () => console.log(`${name} listening on 127.0.0.1:${port} (pid ${process.pid})`));
  process.once('SIGTERM', () => process.exit(0));
}
