import net from 'node:net';
import http from 'node:http';
import { once } from 'node:events';
import { createHash } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { useFixture } from './fixture.ts';
import { ConnectionPool } from '../src/upstream/connection-pool.ts';
import { SocketTracker } from '../src/sockets.ts';
import { Backend } from '../src/upstream/peers.ts';
import { validateConfig } from '../src/config.ts';
import { connect, countConnections, namedBackend, oneConnection, raw, readAll, request, stalledBackend } from './helpers.ts';

const fx = useFixture();
const H = 'Host: example.test\r\n';

describe('keep-alive and the backend pool', () => {
  it('balances every request of one keep-alive client connection on its own', async () => {
    const a = await fx.backend(namedBackend('a'));
    const b = await fx.backend(namedBackend('b'));
    const { port, proxy } = await fx.proxy({ backends: [{ address: a }, { address: b }] });
    const agent = fx.agent(oneConnection());

    const names = [];
    for (let i = 0; i < 6; i++) names.push((await request(port, { agent, path: `/${i}` })).body.toString());

    expect(names).toEqual(['a GET /0', 'b GET /1', 'a GET /2', 'b GET /3', 'a GET /4', 'b GET /5']);
    expect(proxy.stats().clientConnections).toBe(1); // all six came over one client connection
  });

  it('reuses backend connections: 50 requests need at most one connection per backend', async () => {
    const serverA = namedBackend('a');
    const serverB = namedBackend('b');
    const accepted = [countConnections(serverA), countConnections(serverB)];
    const { port } = await fx.proxy({ backends: [{ address: await fx.backend(serverA) }, { address: await fx.backend(serverB) }] });
    const agent = fx.agent(oneConnection());

    for (let i = 0; i < 50; i++) expect((await request(port, { agent })).status).toBe(200);

    expect(accepted.map((n) => n())).toEqual([1, 1]);
  });

  it('keeps no more idle backend connections than backendKeepAlive.maxIdle', async () => {
    // The backend holds every answer until all five requests are in: five connections at once.
    const waiting: http.ServerResponse[] = [];
    const server = namedBackend('a', (req, res) => {
      req.resume();
      waiting.push(res);
      if (waiting.length === 5) for (const r of waiting) r.end('ok');
    });
    const accepted = countConnections(server);
    const { port, proxy } = await fx.proxy({ backends: [{ address: await fx.backend(server) }], backendKeepAlive: { maxIdle: 2 } });

    await Promise.all(Array.from({ length: 5 }, () => request(port))); // 5 at once: 5 backend connections

    expect(accepted()).toBe(5);
    expect(proxy.connections.idleCount(proxy.upstreams.get('default')!.peers.backends[0]!)).toBe(2);
  });

  it('closes idle backend connections after backendKeepAlive.idleTimeoutMs', async () => {
    let closed!: () => void;
    const backendSawClose = new Promise<void>((resolve) => (closed = resolve));
    const server = namedBackend('a');
    server.on('connection', (socket: net.Socket) => socket.on('close', () => closed()));
    const { port, proxy } = await fx.proxy({ backends: [{ address: await fx.backend(server) }], backendKeepAlive: { idleTimeoutMs: 100 } });

    await request(port);
    await backendSawClose; // the proxy, not the backend, closed it: the backend's own timeout is 5 s

    expect(proxy.stats().backendConnectionsOpened).toBe(1);
  });

  it('closes an idle backend connection to make room when the descriptor budget is reached', async () => {
    const server = namedBackend('a');
    const address = await fx.backend(server);
    const backend = new Backend(validateConfig({ listen: '127.0.0.1:0', backends: [{ address }] }).upstreams.default!.backends[0]!);
    const tracker = new SocketTracker();
    const pool = new ConnectionPool({ maxIdle: 10, idleTimeoutMs: 60_000, maxRequests: 100 }, tracker, 2);
    const opened = [pool.open(backend), pool.open(backend)];
    await Promise.all(opened.map((conn) => once(conn.socket, 'connect')));
    for (const conn of opened) pool.release(conn);
    expect(pool.idleCount(backend)).toBe(2);

    const third = pool.open(backend); // a third would pass the budget of 2: the oldest idle one goes
    await once(third.socket, 'connect');
    expect(pool.idleCount(backend)).toBe(1);
    expect(opened[0]!.socket.destroyed).toBe(true);
    for (const conn of [...opened, third]) conn.socket.destroy();
    await tracker.whenIdle();
  });

  it('retries once on a fresh connection when a reused one turns out closed (the stale-socket race)', async () => {
    // This backend answers, then closes every connection right after the response: the proxy's
    // pooled socket is dead by the time the next request is written to it.
    const server = http.createServer((req, res) => {
      req.resume();
      res.end('fresh answer', () => setImmediate(() => req.socket.destroy()));
    });
    server.keepAliveTimeout = 0;
    const accepted = countConnections(server);
    const { port, logs } = await fx.proxy({ backends: [{ address: await fx.backend(server) }] });

    const first = await request(port);
    const second = await request(port);

    expect([first.body.toString(), second.body.toString()]).toEqual(['fresh answer', 'fresh answer']);
    expect(accepted()).toBe(2);
    expect(logs.count(/marked down/)).toBe(0); // a stale socket is not the backend's fault
  });

  it('reads a request whose head and body arrive one byte at a time', async () => {
    const server = namedBackend('a', (req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (chunk: Buffer) => chunks.push(chunk));
      req.on('end', () => res.end(`a got ${Buffer.concat(chunks)}`));
    });
    const { port } = await fx.proxy({ backends: [{ address: await fx.backend(server) }] });
    const client = await connect(port);
    client.setNoDelay(true);

    for (const byte of `POST /slow HTTP/1.1\r\n${H}Content-Length: 5\r\nConnection: close\r\n\r\nhello`) {
      await new Promise((resolve) => client.write(byte, resolve)); // one write, and segment, per byte
    }

    expect((await readAll(client)).toString()).toMatch(/\r\n\r\na got hello$/);
    client.destroy();
  });

  it('answers pipelined requests in order', async () => {
    const server = namedBackend('a', (req, res) => {
      req.resume();
      // The first request is answered last by the backend's clock, yet must come back first.
      setTimeout(() => res.end(`answer to ${req.url}`), req.url === '/1' ? 30 : 0);
    });
    const { port } = await fx.proxy({ backends: [{ address: await fx.backend(server) }] });

    const reply = await raw(
      port,
      `GET /1 HTTP/1.1\r\n${H}\r\nGET /2 HTTP/1.1\r\n${H}\r\nGET /3 HTTP/1.1\r\n${H}Connection: close\r\n\r\n`,
    );

    expect([...reply.matchAll(/answer to (\/\d)/g)].map((m) => m[1])).toEqual(['/1', '/2', '/3']);
  });

  it('frames HEAD, 204 and 304 responses without a body, then serves the next request on the connection', async () => {
    const server = http.createServer((req, res) => {
      if (req.url === '/204') res.writeHead(204).end();
      else if (req.url === '/304') res.writeHead(304, { etag: '"x"' }).end();
      else res.writeHead(200, { 'content-length': 11 }).end(req.method === 'HEAD' ? undefined : 'hello world');
    });
    const { port } = await fx.proxy({ backends: [{ address: await fx.backend(server) }] });

    const reply = await raw(
      port,
      `HEAD /x HTTP/1.1\r\n${H}\r\nGET /204 HTTP/1.1\r\n${H}\r\nGET /304 HTTP/1.1\r\n${H}\r\nGET /last HTTP/1.1\r\n${H}Connection: close\r\n\r\n`,
    );

    const statuses = [...reply.matchAll(/^HTTP\/1\.1 (\d{3})/gm)].map((m) => m[1]);
    expect(statuses).toEqual(['200', '204', '304', '200']);
    expect(reply).toMatch(/content-length: 11\r\n/i); // HEAD keeps the length of the body it did not send
    expect(reply.endsWith('\r\n\r\nhello world')).toBe(true); // the only body is the last one
  });

  it('carries chunked bodies both ways, re-framed', async () => {
    const server = http.createServer(async (req, res) => {
      const chunks: Buffer[] = [];
      for await (const chunk of req) chunks.push(chunk as Buffer);
      res.write('you sent: ');
      setImmediate(() => res.end(Buffer.concat(chunks))); // no Content-Length: node sends it chunked
    });
    const { port } = await fx.proxy({ backends: [{ address: await fx.backend(server) }] });

    const reply = await raw(
      port,
      `POST / HTTP/1.1\r\n${H}Transfer-Encoding: chunked\r\nConnection: close\r\n\r\n` +
        `5;ext=1\r\nhello\r\n6\r\n world\r\n0\r\nX-Trailer: t\r\n\r\n`,
    );

    expect(reply).toMatch(/\r\ntransfer-encoding: chunked\r\n/i);
    const body = reply.slice(reply.indexOf('\r\n\r\n') + 4);
    expect(dechunk(body)).toBe('you sent: hello world');
  });

  it('re-chunks a close-delimited response for an HTTP/1.1 client, and keeps the client connection', async () => {
    const server = net.createServer((socket) => {
      socket.once('data', () => socket.end('HTTP/1.1 200 OK\r\nConnection: close\r\n\r\nuntil the end'));
    });
    const { port } = await fx.proxy({ backends: [{ address: await fx.backend(server) }] });
    const agent = fx.agent(oneConnection());

    const first = await request(port, { agent });
    const second = await request(port, { agent });

    expect(first.headers['transfer-encoding']).toBe('chunked');
    expect([first.body.toString(), second.body.toString()]).toEqual(['until the end', 'until the end']);
  });

  it('streams a 64 MiB download to a slow reader and a 32 MiB upload to a slow backend with bounded memory', async () => {
    const download = Buffer.alloc(64 * 1024 * 1024, 'd');
    let uploadHash = '';
    const server = http.createServer(async (req, res) => {
      if (req.method === 'GET') return res.end(download);
      const hash = createHash('sha256');
      for await (const chunk of req) {
        hash.update(chunk as Buffer);
        await new Promise((resolve) => setImmediate(resolve)); // a backend that reads slowly
      }
      uploadHash = hash.digest('hex');
      res.end('stored');
    });
    const { port, proxy } = await fx.proxy({ backends: [{ address: await fx.backend(server) }], clientMaxBodySize: 0 });

    const client = await connect(port);
    client.write(`GET / HTTP/1.1\r\n${H}Connection: close\r\n\r\n`);
    let received = 0;
    client.on('data', (chunk: Buffer) => {
      received += chunk.length;
      client.pause();
      setTimeout(() => client.resume(), 1); // a client that reads slowly
    });
    await once(client, 'end');
    client.destroy();
    expect(received).toBeGreaterThan(download.length);

    const upload = Buffer.alloc(32 * 1024 * 1024, 'u');
    const stored = await request(port, { method: 'POST', body: upload });
    expect(stored.body.toString()).toBe('stored');
    expect(uploadHash).toBe(createHash('sha256').update(upload).digest('hex'));

    expect(proxy.stats().peakBufferedBytes).toBeLessThan(512 * 1024);
  });
});

describe('errors', () => {
  it('502 when the backend refuses', async () => {
    const { port } = await fx.proxy({ backends: [{ address: `127.0.0.1:${await freePortOf()}` }] });
    const reply = await request(port);
    expect(reply.status).toBe(502);
    expect(reply.body.toString()).toMatch(/ECONNREFUSED/);
  });

  it('502 when the backend resets before answering', async () => {
    const server = net.createServer((socket) => socket.once('data', () => socket.resetAndDestroy()));
    const { port } = await fx.proxy({ backends: [{ address: await fx.backend(server) }] });
    expect((await request(port, { method: 'POST', body: 'x' })).status).toBe(502);
  });

  it('502 for a malformed response, and that backend connection is dropped', async () => {
    const server = net.createServer((socket) => socket.once('data', () => socket.write('HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nab')));
    const { port } = await fx.proxy({ backends: [{ address: await fx.backend(server) }] });
    const reply = await request(port);
    expect(reply.status).toBe(502);
    expect(reply.body.toString()).toMatch(/more than one Content-Length/);
  });

  it('503 when no backend is healthy', async () => {
    const { port, logs } = await fx.proxy({
      backends: [{ address: `127.0.0.1:${await freePortOf()}` }],
      healthCheck: { intervalMs: 20, timeoutMs: 500, rise: 1, fall: 1 },
    });
    await logs.waitFor(/marked down by health check/); // active checks say so; passive ones never take a lone backend out
    const reply = await request(port);
    expect(reply.status).toBe(503);
    expect(reply.body.toString()).toMatch(/no healthy backend/);
  });

  it('504 when the backend does not answer within responseTimeoutMs', async () => {
    const server = http.createServer(() => {}); // reads the request, never answers
    const { port } = await fx.proxy({ backends: [{ address: await fx.backend(server) }], responseTimeoutMs: 150 });
    const reply = await request(port);
    expect(reply.status).toBe(504);
    expect(reply.body.toString()).toMatch(/backend silent for 150 ms/);
  });

  it('504 when the connect does not complete within connectTimeoutMs', async () => {
    const stalled = await stalledBackend();
    try {
      const { port } = await fx.proxy({ backends: [{ address: `127.0.0.1:${stalled.port}` }], connectTimeoutMs: 150 });
      const reply = await request(port);
      expect(reply.status).toBe(504);
      expect(reply.body.toString()).toMatch(/connect timed out after 150 ms/);
    } finally {
      await stalled.release();
    }
  });

  it('cuts the client (no second status line) when the backend dies mid-response', async () => {
    const server = net.createServer((socket) => {
      socket.once('data', () => socket.write('HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nonly part', () => socket.destroy()));
    });
    const { port, logs } = await fx.proxy({ backends: [{ address: await fx.backend(server) }] });

    const reply = await raw(port, `GET / HTTP/1.1\r\n${H}\r\n`);

    expect(reply).toMatch(/^HTTP\/1\.1 200 OK\r\n/);
    expect(reply.match(/HTTP\/1\.1 /g)).toHaveLength(1);
    expect(reply.endsWith('only part')).toBe(true);
    await logs.waitFor(/after the response began; cutting the client/);
  });

  it('a client that aborts mid-response takes its backend connection down', async () => {
    let backendClosed!: () => void;
    const closed = new Promise<void>((resolve) => (backendClosed = resolve));
    const server = http.createServer((req, res) => {
      res.on('close', () => backendClosed());
      res.write('x'.repeat(1024)); // and never finishes
    });
    const { port } = await fx.proxy({ backends: [{ address: await fx.backend(server) }] });

    const client = await connect(port);
    client.write(`GET / HTTP/1.1\r\n${H}\r\n`);
    await once(client, 'data');
    client.resetAndDestroy();

    await closed;
  });
});

describe('routing, headers, upgrade', () => {
  it('routes by Host to virtual hosts, case-insensitively and without the port, with wildcards', async () => {
    const www = await fx.backend(namedBackend('www'));
    const api = await fx.backend(namedBackend('api'));
    const { port } = await fx.proxy({
      backends: [{ address: www }],
      upstreams: { api: { backends: [{ address: api }] } },
      virtualHosts: [{ serverNames: ['api.example', '*.api.example'], upstream: 'api' }],
    });
    const ask = async (host: string) => (await request(port, { headers: { host } })).body.toString();

    expect(await ask('api.example')).toBe('api GET /');
    expect(await ask('API.Example:8080')).toBe('api GET /');
    expect(await ask('v2.api.example')).toBe('api GET /');
    expect(await ask('example')).toBe('www GET /');
    expect(await ask('other.test')).toBe('www GET /');
  });

  it('answers 404 for an unknown host when there is no default upstream', async () => {
    const api = await fx.backend(namedBackend('api'));
    const { port } = await fx.proxy({
      upstreams: { api: { backends: [{ address: api }] } },
      virtualHosts: [{ serverNames: ['api.example'], upstream: 'api' }],
    });
    expect((await request(port, { headers: { host: 'nobody.example' } })).status).toBe(404);
  });

  it('removes hop-by-hop headers both ways and adds forwarding headers', async () => {
    let seen: http.IncomingHttpHeaders = {};
    const server = http.createServer((req, res) => {
      seen = req.headers;
      res.setHeader('Connection', 'X-Backend-Secret');
      res.setHeader('X-Backend-Secret', 'leak');
      res.setHeader('Keep-Alive', 'timeout=5');
      res.end('ok');
    });
    const { port } = await fx.proxy({ backends: [{ address: await fx.backend(server) }] });

    const reply = await request(port, {
      headers: {
        host: 'site.example',
        connection: 'keep-alive, X-Drop-Me',
        'x-drop-me': 'secret',
        'keep-alive': 'timeout=99',
        te: 'trailers',
        'proxy-connection': 'keep-alive',
        'x-forwarded-for': '203.0.113.7',
        'x-kept': 'yes',
      },
    });

    expect(seen['x-drop-me']).toBeUndefined();
    expect(seen['keep-alive']).toBeUndefined();
    expect(seen.te).toBeUndefined();
    expect(seen['proxy-connection']).toBeUndefined();
    expect(seen['x-kept']).toBe('yes');
    expect(seen.host).toBe('site.example');
    expect(seen['x-forwarded-for']).toBe('203.0.113.7, 127.0.0.1');
    expect(seen['x-forwarded-proto']).toBe('http');
    expect(seen['x-forwarded-host']).toBe('site.example');
    expect(seen.via).toBe('1.1 lb-from-scratch');
    expect(reply.headers['x-backend-secret']).toBeUndefined();
    expect(reply.headers['keep-alive']).toBeUndefined();
    expect(reply.headers.via).toBe('1.1 lb-from-scratch');
  });

  it('closes after the response for Connection: close and for HTTP/1.0', async () => {
    const { port } = await fx.proxy({ backends: [{ address: await fx.backend(namedBackend('a')) }] });
    for (const request of [`GET / HTTP/1.1\r\n${H}Connection: close\r\n\r\n`, 'GET / HTTP/1.0\r\n\r\n']) {
      const reply = await raw(port, request); // raw() resolves only when the proxy ends the connection
      expect(reply).toMatch(/^HTTP\/1\.1 200 OK\r\n[\s\S]*connection: close\r\n[\s\S]*a GET \/$/);
    }
  });

  it('closes a client connection after keepAliveRequests requests', async () => {
    const { port } = await fx.proxy({ backends: [{ address: await fx.backend(namedBackend('a')) }], keepAliveRequests: 2 });
    const reply = await raw(port, `GET /1 HTTP/1.1\r\n${H}\r\nGET /2 HTTP/1.1\r\n${H}\r\nGET /3 HTTP/1.1\r\n${H}\r\n`);
    expect(reply.match(/HTTP\/1\.1 200/g)).toHaveLength(2);
    expect(reply).toMatch(/connection: close\r\n\r\na GET \/2$/);
  });

  it('closes an idle client connection after keepAliveTimeoutMs', async () => {
    const server = namedBackend('a');
    server.keepAliveTimeout = 0; // the backend never closes: only the proxy's timer can end this
    const { port } = await fx.proxy({ backends: [{ address: await fx.backend(server) }], keepAliveTimeoutMs: 100 });
    const client = await connect(port);
    client.write(`GET / HTTP/1.1\r\n${H}\r\n`);
    const everything = await readAll(client); // ends when the proxy gives up on the idle connection
    expect(everything.toString()).toMatch(/a GET \/$/);
    client.destroy();
  });

  it('tunnels a WebSocket after 101 Switching Protocols, reusing the byte pump', async () => {
    const server = http.createServer();
    server.on('upgrade', (req, socket: net.Socket) => {
      socket.write(
        'HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n' +
          `Sec-WebSocket-Accept: ${accept(req.headers['sec-websocket-key'] as string)}\r\n\r\n`,
      );
      socket.on('data', (frame: Buffer) => socket.write(serverFrame(`echo: ${unmask(frame)}`)));
    });
    const { port } = await fx.proxy({ backends: [{ address: await fx.backend(server) }] });

    const client = await connect(port);
    const key = 'dGhlIHNhbXBsZSBub25jZQ==';
    client.write(`GET /chat HTTP/1.1\r\n${H}Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: ${key}\r\nSec-WebSocket-Version: 13\r\n\r\n`);
    const [head] = (await once(client, 'data')) as [Buffer];
    expect(head.toString()).toMatch(/^HTTP\/1\.1 101 Switching Protocols\r\n/);
    expect(head.toString()).toContain(`Sec-WebSocket-Accept: ${accept(key)}`);

    for (const text of ['hello', 'second frame']) {
      client.write(clientFrame(text));
      const [frame] = (await once(client, 'data')) as [Buffer];
      expect(frame.subarray(2).toString()).toBe(`echo: ${text}`);
    }
    client.destroy();
  });
});

async function freePortOf(): Promise<number> {
  const server = net.createServer().listen(0, '127.0.0.1');
  await once(server, 'listening');
  const { port } = server.address() as net.AddressInfo;
  await new Promise((resolve) => server.close(resolve));
  return port;
}

/** Decodes a chunked body (test side, deliberately simple). */
function dechunk(body: string): string {
  let out = '';
  let rest = body;
  for (;;) {
    const eol = rest.indexOf('\r\n');
    const size = parseInt(rest.slice(0, eol), 16);
    if (size === 0) return out;
    out += rest.slice(eol + 2, eol + 2 + size);
    rest = rest.slice(eol + 2 + size + 2);
  }
}

function accept(key: string): string {
  return createHash('sha1').update(`${key}258EAFA5-E914-47DA-95CA-C5AB0DC85B11`).digest('base64');
}

/** A masked text frame, as a browser sends (payloads under 126 bytes). */
function clientFrame(text: string): Buffer {
  const payload = Buffer.from(text);
  const mask = Buffer.from([1, 2, 3, 4]);
  const masked = payload.map((byte, i) => byte ^ mask[i % 4]!);
  return Buffer.concat([Buffer.from([0x81, 0x80 | payload.length]), mask, masked]);
}

function unmask(frame: Buffer): string {
  const length = frame[1]! & 0x7f;
  const mask = frame.subarray(2, 6);
  return Buffer.from(frame.subarray(6, 6 + length).map((byte, i) => byte ^ mask[i % 4]!)).toString();
}

function serverFrame(text: string): Buffer {
  const payload = Buffer.from(text);
  return Buffer.concat([Buffer.from([0x81, payload.length]), payload]);
}
