// Faults found by trying the proxy from outside: framing that must never desync, a client's
// half-close, slowness and size that are the client's fault, and nginx's health rules.
import net from 'node:net';
import http from 'node:http';
import { once } from 'node:events';
import { describe, expect, it } from 'vitest';
import { useFixture } from './fixture.ts';
import { connect, countConnections, namedBackend, oneConnection, readAll, request } from './helpers.ts';

const fx = useFixture();
const H = 'Host: example.test\r\n';

/** A raw backend: answers each request with whatever `reply` writes on the socket. */
function rawBackend(reply: (socket: net.Socket, request: string, n: number) => void): net.Server {
  let n = 0;
  return net.createServer((socket) => {
    socket.on('error', () => {});
    socket.once('data', (chunk: Buffer) => reply(socket, chunk.toString('latin1'), n++));
  });
}

describe('response framing never desyncs', () => {
  it('re-chunks a close-delimited body whose head arrives alone, and the next response is its own', async () => {
    let sendBody!: () => void;
    const server = rawBackend((socket, req) => {
      if (req.startsWith('GET /next')) return socket.end('HTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\nnext');
      socket.write('HTTP/1.1 200 OK\r\n\r\n'); // no length: the body runs until close
      sendBody = () => socket.end('the late body');
    });
    const { port } = await fx.proxy({ backends: [{ address: await fx.backend(server) }] });
    const agent = fx.agent(oneConnection());

    const first = await new Promise<{ headers: http.IncomingHttpHeaders; body: string }>((resolve, reject) => {
      http
        .get({ host: '127.0.0.1', port, path: '/first', agent }, (res) => {
          let body = '';
          res.on('data', (chunk: Buffer) => (body += chunk));
          res.on('end', () => resolve({ headers: res.headers, body }));
          sendBody(); // only now, with the head at the client, does the body leave the backend
        })
        .on('error', reject);
    });
    const second = await request(port, { agent, path: '/next' });

    expect(first.headers['transfer-encoding']).toBe('chunked');
    expect(first.body).toBe('the late body');
    expect(second.body.toString()).toBe('next');
  });

  it('frames an empty close-delimited body as one last chunk, and serves the next request', async () => {
    const server = rawBackend((socket, req) =>
      socket.end(req.startsWith('GET /next') ? 'HTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\nnext' : 'HTTP/1.1 200 OK\r\n\r\n'),
    );
    const { port } = await fx.proxy({ backends: [{ address: await fx.backend(server) }] });
    const client = await connect(port);
    client.write(`GET /empty HTTP/1.1\r\n${H}\r\nGET /next HTTP/1.1\r\n${H}Connection: close\r\n\r\n`);

    const reply = (await readAll(client)).toString('latin1');
    client.destroy();

    const [firstHead, rest] = [reply.slice(0, reply.indexOf('\r\n\r\n')), reply.slice(reply.indexOf('\r\n\r\n') + 4)];
    expect(firstHead).toMatch(/transfer-encoding: chunked/);
    expect(rest).toMatch(/^0\r\n\r\nHTTP\/1\.1 200 OK\r\n[\s\S]*\r\n\r\nnext$/);
  });
});

describe('the client side of a request', () => {
  it('answers a POST whose client half-closes right after the body', async () => {
    const server = namedBackend('a', (req, res) => {
      let body = '';
      req.on('data', (chunk: Buffer) => (body += chunk));
      req.on('end', () => res.end(`a got ${body}`));
    });
    const { port } = await fx.proxy({ backends: [{ address: await fx.backend(server) }] });
    const client = await connect(port);

    client.end(`POST / HTTP/1.1\r\n${H}Content-Length: 5\r\n\r\nhello`); // FIN with the body

    expect((await readAll(client)).toString()).toMatch(/^HTTP\/1\.1 200 OK\r\n[\s\S]*\r\n\r\na got hello$/);
    client.destroy();
  });

  it('answers 400 when the client half-closes before its body is complete', async () => {
    const { port } = await fx.proxy({ backends: [{ address: await fx.backend(namedBackend('a')) }] });
    const client = await connect(port);
    client.end(`POST / HTTP/1.1\r\n${H}Content-Length: 50\r\n\r\nonly ten b`);
    expect((await readAll(client)).toString()).toMatch(/^HTTP\/1\.1 400 Bad Request\r\n[\s\S]*closed before its request body was complete/);
    client.destroy();
  });

  it('answers 413 for a Content-Length over clientMaxBodySize, before any backend is asked', async () => {
    const server = namedBackend('a');
    const accepted = countConnections(server);
    const { port } = await fx.proxy({ backends: [{ address: await fx.backend(server) }], clientMaxBodySize: 10 });
    const reply = await request(port, { method: 'POST', body: 'eleven byte' });
    expect(reply.status).toBe(413);
    expect((await request(port, { method: 'POST', body: 'ten bytes!' })).body.toString()).toBe('a POST /');
    expect(accepted()).toBe(1); // only the second request reached the backend
  });

  it('answers 413 once a chunked body grows past clientMaxBodySize, and the backend is not blamed', async () => {
    const server = namedBackend('a', (req) => req.resume()); // reads forever, never answers
    const { port, logs } = await fx.proxy({
      backends: [{ address: await fx.backend(server) }, { address: await fx.backend(namedBackend('b')) }],
      clientMaxBodySize: 8,
    });
    const client = await connect(port);
    client.write(`POST / HTTP/1.1\r\n${H}Transfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n5\r\nworld\r\n`);
    expect((await readAll(client)).toString()).toMatch(/^HTTP\/1\.1 413 Content Too Large\r\n/);
    client.destroy();
    expect(logs.count(/marked down/)).toBe(0);
  });

  it('answers 408 to an upload that stalls longer than clientBodyTimeoutMs; the backend is not blamed', async () => {
    const { port, logs } = await fx.proxy({
      backends: [{ address: await fx.backend(namedBackend('a')) }, { address: await fx.backend(namedBackend('b')) }],
      clientBodyTimeoutMs: 100,
    });
    const client = await connect(port);
    client.write(`POST / HTTP/1.1\r\n${H}Content-Length: 10\r\n\r\nhalf `); // and nothing more

    expect((await readAll(client)).toString()).toMatch(/^HTTP\/1\.1 408 Request Timeout\r\n/);
    client.destroy();
    expect(logs.count(/marked down/)).toBe(0);
    const names = [(await request(port)).body.toString(), (await request(port)).body.toString()];
    expect(names.sort()).toEqual(['a GET /', 'b GET /']); // both still in rotation
  });

  it("starts the backend's clock only when the request has been sent", async () => {
    const server = namedBackend('a', (req, res) => {
      let body = '';
      req.on('data', (chunk: Buffer) => (body += chunk));
      req.on('end', () => res.end(`a got ${body}`));
    });
    const { port } = await fx.proxy({ backends: [{ address: await fx.backend(server) }], responseTimeoutMs: 150 });
    const client = await connect(port);
    client.write(`POST / HTTP/1.1\r\n${H}Content-Length: 4\r\nConnection: close\r\n\r\n`);
    // A paced upload that takes twice responseTimeoutMs: the client's time, not the backend's.
    for (const piece of ['a', 'b', 'c', 'd']) {
      await new Promise((resolve) => setTimeout(resolve, 75));
      client.write(piece);
    }
    expect((await readAll(client)).toString()).toMatch(/\r\n\r\na got abcd$/);
    client.destroy();
  });

  it('cuts a response whose backend falls silent mid-body for responseTimeoutMs (time between two reads)', async () => {
    const server = rawBackend((socket) => socket.write('HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nten bytes.')); // then silence
    const { port, logs } = await fx.proxy({ backends: [{ address: await fx.backend(server) }], responseTimeoutMs: 100 });
    const client = await connect(port);
    client.write(`GET / HTTP/1.1\r\n${H}\r\n`);
    expect((await readAll(client)).toString()).toMatch(/\r\n\r\nten bytes\.$/); // cut: no second status line
    client.destroy();
    expect(logs.count(/timed out after the response began; cutting the client/)).toBe(1);
  });
});

describe('health as nginx does it', () => {
  it('never takes a lone backend out of service: after a bad answer, the next request is served', async () => {
    const server = rawBackend((socket, _req, n) =>
      socket.end(n === 0 ? 'HTTP/1.1 2OO OK\r\n\r\n' : 'HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok'),
    );
    const { port, logs } = await fx.proxy({ backends: [{ address: await fx.backend(server) }] });
    expect((await request(port)).status).toBe(502);
    expect((await request(port)).body.toString()).toBe('ok'); // no fail_timeout to sit out
    expect(logs.count(/marked down/)).toBe(0);
  });

  it('when every backend is down, answers, then tries them all again on the next request', async () => {
    const [a, b] = [await fx.backend(namedBackend('a')), await fx.backend(namedBackend('b'))];
    await fx.stop(a);
    await fx.stop(b);
    const { port, logs } = await fx.proxy({ backends: [{ address: a }, { address: b }] });

    expect((await request(port)).status).toBe(502); // both refused, both marked down
    await logs.waitFor(/every backend was down: .* marked up again/);
    await fx.backend(namedBackend('a'), Number(a.split(':')[1]));
    expect((await request(port)).body.toString()).toBe('a GET /'); // no 503 for fail_timeout
  });
});

describe('shutdown and tunnels', () => {
  it('says Connection: close on a response in flight when shutdown begins', async () => {
    let release!: () => void;
    let arrived!: () => void;
    const atBackend = new Promise<void>((resolve) => (arrived = resolve));
    const server = namedBackend('a', (req, res) => {
      req.resume();
      release = () => res.end('last one');
      arrived();
    });
    const { port, proxy } = await fx.proxy({ backends: [{ address: await fx.backend(server) }] });
    const client = await connect(port);
    client.write(`GET / HTTP/1.1\r\n${H}\r\n`); // a keep-alive request

    await atBackend;
    const closing = proxy.close(5000);
    release();
    const reply = (await readAll(client)).toString();
    client.destroy();
    await closing;

    expect(reply).toMatch(/\r\nconnection: close\r\n[\s\S]*last one$/);
  });

  it('closes an upgraded tunnel that stays silent both ways for tunnelIdleTimeoutMs', async () => {
    const server = http.createServer();
    server.on('upgrade', (_req, socket: net.Socket) => socket.write('HTTP/1.1 101 Switching Protocols\r\nUpgrade: x\r\nConnection: Upgrade\r\n\r\n'));
    const { port } = await fx.proxy({ backends: [{ address: await fx.backend(server) }], tunnelIdleTimeoutMs: 100 });
    const client = await connect(port);
    client.write(`GET / HTTP/1.1\r\n${H}Upgrade: x\r\nConnection: Upgrade\r\n\r\n`);
    const [head] = (await once(client, 'data')) as [Buffer];
    expect(head.toString()).toMatch(/^HTTP\/1\.1 101 /);
    await readAll(client); // ends only when the proxy closes the idle tunnel
    client.destroy();
  });
});
