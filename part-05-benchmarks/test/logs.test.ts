// Logs that say what happened: a refused request keeps its request line and says why once; a
// client that leaves mid-head or mid-response is logged (400, 499) with the bytes it got.
import http from 'node:http';
import net from 'node:net';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { useFixture } from './fixture.ts';
import { connect, freePort, namedBackend, raw, request } from './helpers.ts';
import { formatLine } from '../src/observe/access-log.ts';

const fx = useFixture();
const dirs: string[] = [];
afterEach(() => {
  for (const dir of dirs.splice(0)) rmSync(dir, { recursive: true, force: true });
});

/**
 * A proxy with an access log in a fresh folder, serving only the site a.test (another Host gets
 * 404); lines() reads the log once the proxy has closed (closing flushes it).
 */
async function loggedProxy(backend: net.Server = namedBackend('a'), config: Record<string, unknown> = {}) {
  const dir = mkdtempSync(join(tmpdir(), 'lb-logs-'));
  dirs.push(dir);
  const file = join(dir, 'access.log');
  const fixture = await fx.proxy({
    upstreams: { a: { backends: [{ address: await fx.backend(backend) }] } },
    virtualHosts: [{ serverNames: ['a.test'], upstream: 'a' }],
    accessLog: file,
    ...config,
  });
  const lines = async () => {
    expect(await fixture.proxy.close(2000)).toBe(0);
    return readFileSync(file, 'utf8').split('\n').filter((line) => line !== '');
  };
  return { ...fixture, lines };
}

describe('the access log and the error log', () => {
  it.each([
    ['a bad header', 'GET /x?y=1 HTTP/1.1\r\nHost: a.test\r\nX@Bad: 1\r\n\r\n', '"GET /x?y=1 HTTP/1.1" 400 ', /invalid header name "X@Bad"/],
    ['a bad Host', 'GET /x HTTP/1.1\r\nHost: a/b\r\n\r\n', '"GET /x HTTP/1.1" 400', /invalid host "a\/b"/],
    ['no site for the Host', 'HEAD /x HTTP/1.1\r\nHost: elsewhere.test\r\n\r\n', '"HEAD /x HTTP/1.1" 404 0', /no site for host/],
    ['a bad request line', 'GET /a b HTTP/1.1\r\nHost: a.test\r\n\r\n', '"-" 400', /request line must be METHOD SP TARGET SP VERSION/],
  ])('a request refused for %s keeps its line where it was valid, and says why once', async (_what, bytes, logged, reason) => {
    const { port, lines, logs } = await loggedProxy();
    expect(await raw(port, bytes)).toMatch(/^HTTP\/1\.1 4\d\d /);
    expect(logs.count(reason)).toBe(1);
    const [line] = await lines();
    expect(line).toContain(logged);
    expect(line).toMatch(/ PR$/); // HAProxy's termination state: the proxy refused it, in the request
  });

  it('a client that closes in the middle of its head is logged as 400, and not as an error', async () => {
    const { port, lines, logs } = await loggedProxy();
    const client = await connect(port);
    // The FIN follows the bytes, in order: the proxy reads the partial head, then the end.
    client.end('GET /half HTTP/1.1\r\nHost: a.test\r\n');
    await new Promise((resolve) => client.once('close', resolve));
    const [line] = await lines();
    expect(line).toMatch(/"-" 400 0 .* CR$/); // the client left, in the request
    expect(logs.lines).toEqual([]);
  });

  it('a client that resets before the last byte of the response is logged as 499, with the bytes it was sent', async () => {
    let backendGone!: () => void;
    const gone = new Promise<void>((resolve) => (backendGone = resolve));
    const backend = namedBackend('a', (req, res) => {
      req.resume();
      res.writeHead(200, { 'content-length': 10 });
      res.write('first'); // and the other five bytes never come
      res.on('close', backendGone); // the proxy dropped its backend connection: it saw the reset
    });
    const { port, lines } = await loggedProxy(backend);
    const client = await connect(port);
    client.write('GET /slow HTTP/1.1\r\nHost: a.test\r\n\r\n');
    let got = '';
    while (!got.endsWith('first')) got += String(await new Promise((resolve) => client.once('data', resolve)));
    client.resetAndDestroy();
    await gone;
    const [line] = await lines();
    expect(line).toMatch(/"GET \/slow HTTP\/1\.1" 499 5 .* CD$/); // the client left, in the data
  });

  it('every backend down: one line for the burst and one when it is over, however many requests fail', async () => {
    const dead = [`127.0.0.1:${await freePort()}`, `127.0.0.1:${await freePort()}`];
    const { logs } = await fx.proxy({ backends: dead.map((address) => ({ address })) }).then(async (f) => {
      for (let i = 0; i < 20; i++) expect((await request(f.port)).status).toBe(502);
      return f;
    });
    await logs.waitFor(/^every backend was down: \d+ times in that burst; over now$/);
    expect(logs.count(/^every backend was down: .* marked up again/)).toBe(1);
    // Before the burst began: each backend's first failure, and nothing per request after it.
    expect(logs.lines.length).toBeLessThanOrEqual(5);
  });

  // Who ended each exchange, and in which phase, as HAProxy's two characters.
  it.each([
    ['a normal answer', (s: net.Socket) => s.end('HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok'), {}, 200, '--'],
    ['a reset before the head', (s: net.Socket) => s.resetAndDestroy(), {}, 502, 'SH'],
    ['a silent backend', () => {}, { responseTimeoutMs: 100 }, 504, 'sH'],
    ['a malformed response', (s: net.Socket) => s.end('HTTP/1.1 abc\r\n\r\n'), {}, 502, 'PH'],
    ['a death mid-body', (s: net.Socket) => s.write('HTTP/1.1 200 OK\r\nContent-Length: 9\r\n\r\nhalf', () => s.resetAndDestroy()), {}, 200, 'SD'],
  ])('%s is logged with its termination state', async (_what, answer, config, status, termination) => {
    const backend = net.createServer((socket) => {
      socket.on('error', () => {});
      socket.once('data', () => answer(socket));
    });
    const { port, lines } = await loggedProxy(backend, config);
    await raw(port, 'POST /t HTTP/1.1\r\nHost: a.test\r\nContent-Length: 0\r\nConnection: close\r\n\r\n');
    const [line] = await lines();
    expect(line).toMatch(new RegExp(`"POST /t HTTP/1\\.1" ${status} .* ${termination}$`));
  });

  it('a backend that refuses the connection is logged SC', async () => {
    const dead = `127.0.0.1:${await freePort()}`;
    const dir = mkdtempSync(join(tmpdir(), 'lb-logs-'));
    dirs.push(dir);
    const { port, proxy } = await fx.proxy({ backends: [{ address: dead }], accessLog: join(dir, 'access.log') });
    expect((await request(port)).status).toBe(502);
    expect(await proxy.close(2000)).toBe(0);
    expect(readFileSync(join(dir, 'access.log'), 'utf8')).toMatch(/ 502 .* SC\n$/);
  });

  it('stamps a line with the time it is written, as nginx\'s $time_local, so lines stay in order', () => {
    const record = { clientIp: '127.0.0.1', start: 0, requestLine: 'GET / HTTP/1.1', status: 200, bodyBytes: 1, referer: undefined, userAgent: undefined, upstreams: [], requestSeconds: 0, termination: '--' };
    expect(formatLine(record, new Date(2026, 10, 30, 17, 4, 5))).toMatch(/\[30\/Nov\/2026:17:04:05 [+-]\d{4}\]/);
  });
});
