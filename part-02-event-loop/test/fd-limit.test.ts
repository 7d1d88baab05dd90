// Out of file descriptors: more clients than `ulimit -n` allows. The proxy must take only as many
// as leave room for their backend connections, close the rest at once, say so once, never blame
// a backend, and serve normally again by itself.
import http from 'node:http';
import { afterEach, describe, expect, it } from 'vitest';
import { connect, listen, listeningPort, readAll, run, shut, waitForOutput, type RunningProcess } from './helpers.ts';

let proc: RunningProcess | undefined;
let backend: http.Server | undefined;

afterEach(async () => {
  proc?.child.kill('SIGTERM');
  await proc?.exit;
  if (backend) await shut(backend);
  proc = backend = undefined;
});

describe('running out of file descriptors', () => {
  it('under ulimit -n 80, serves the clients it takes, closes the rest, logs once, and recovers', async () => {
    // The backend holds every request until the proxy has said it reached its limit, then answers
    // them all, so the limit is reached however slow the machine is.
    // (The proxy takes about (80 - the ~30 descriptors it starts with - 16) / 2 = 17 clients.)
    const held: http.ServerResponse[] = [];
    let answering = false;
    backend = http.createServer((req, res) => {
      req.resume();
      if (answering) res.end('ok');
      else held.push(res);
    });
    const { port: backendPort } = await listen(backend);
    proc = run(['--listen', '127.0.0.1:0', '--backend', `127.0.0.1:${backendPort}`], 80);
    const port = await listeningPort(proc);
    const limitLogged = waitForOutput(proc, /accept: too many open files: at \d+ clients, closing new connections/);
    void limitLogged.then(() => {
      answering = true;
      for (const res of held.splice(0)) res.end('ok');
    });

    const replies = await Promise.all(
      Array.from({ length: 80 }, async () => {
        const client = await connect(port);
        client.write('GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n');
        const reply = (await readAll(client)).toString();
        client.destroy();
        return reply;
      }),
    );

    const served = replies.filter((r) => /^HTTP\/1\.1 200 OK\r\n[\s\S]*ok$/.test(r)).length;
    const closed = replies.filter((r) => r === '').length;
    expect(served).toBeGreaterThan(0);
    expect(closed).toBeGreaterThan(0); // over the limit: closed at the door, nothing else
    expect(served + closed).toBe(80); // no 502 or 503: no backend connect ran out of descriptors
    await limitLogged;
    expect(proc.stderr().match(/accept: too many open files/g)).toHaveLength(1); // once per burst
    expect(proc.stderr()).not.toMatch(/marked down|unreachable|cannot open a backend connection/);

    // Recovers by itself: once the closes have reached it, a new client is served.
    let after = '';
    while (!after.endsWith('ok')) {
      const client = await connect(port);
      client.write('GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n');
      after = (await readAll(client)).toString();
      client.destroy();
    }
  });
});
