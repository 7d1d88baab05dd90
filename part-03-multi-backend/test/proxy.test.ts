import net from 'node:net';
import http from 'node:http';
import { once } from 'node:events';
import { randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import type { Proxy } from '../src/proxy.ts';
import { useFixture, type Fixture } from './fixture.ts';
import { connect, freePort, readAll, request } from './helpers.ts';

const fx = useFixture();
let current: Fixture;
let proxy: Proxy | undefined;

/** The proxy over one backend, by port; returns the proxy's port. */
async function proxyTo(backendPort: number): Promise<number> {
  current = await fx.proxy({ backends: [{ address: `127.0.0.1:${backendPort}` }] });
  proxy = current.proxy;
  return current.port;
}

async function backend(server: net.Server, wantedPort = 0): Promise<number> {
  return Number((await fx.backend(server, wantedPort)).split(':')[1]);
}

describe('one backend, as before', () => {
  it('forwards a request and a 10 MiB response byte for byte', async () => {
    const payload = randomBytes(10 * 1024 * 1024);
    const port = await proxyTo(await backend(http.createServer((_req, res) => res.end(payload))));

    const response = await request(port);

    expect(response.status).toBe(200);
    expect(response.body.length).toBe(payload.length);
    expect(response.body.equals(payload)).toBe(true);
  });

  it('delivers a request body of several MiB to the backend intact', async () => {
    const upload = randomBytes(6 * 1024 * 1024 + 123);
    let received = Buffer.alloc(0);
    const port = await proxyTo(
      await backend(
        http.createServer(async (req, res) => {
          const chunks: Buffer[] = [];
          for await (const chunk of req) chunks.push(chunk as Buffer);
          received = Buffer.concat(chunks);
          res.end('stored');
        }),
      ),
    );

    const response = await request(port, { method: 'POST', body: upload });

    expect(response.body.toString()).toBe('stored');
    expect(received.equals(upload)).toBe(true);
  });

  it('serves 200 concurrent clients, each with its own answer', async () => {
    const port = await proxyTo(
      await backend(http.createServer((req, res) => res.end(`answer for ${req.url}`))),
    );

    const ids = Array.from({ length: 200 }, (_, i) => i);
    const answers = await Promise.all(ids.map((i) => request(port, { path: `/client-${i}` })));

    expect(answers.map((a) => a.body.toString())).toEqual(ids.map((i) => `answer for /client-${i}`));
    expect(proxy!.stats().totalPairs).toBe(200);
  });

  it('keeps memory bounded while a slow client reads a 64 MiB response', async () => {
    const size = 64 * 1024 * 1024;
    const port = await proxyTo(
      await backend(net.createServer((socket) => socket.end(Buffer.alloc(size, 'x')))),
    );

    const client = await connect(port);
    let received = 0;
    client.on('data', (chunk: Buffer) => {
      received += chunk.length;
      // Read slowly: take one chunk, then look away for a millisecond.
      client.pause();
      setTimeout(() => client.resume(), 1);
    });
    client.end();
    await once(client, 'close');

    expect(received).toBe(size);
    // Without backpressure the proxy would queue most of the 64 MiB in user space.
    expect(proxy!.stats().peakBufferedBytes).toBeLessThan(256 * 1024);
  });

  it('delivers the whole response after the client half-closes', async () => {
    const answer = randomBytes(2 * 1024 * 1024);
    const port = await proxyTo(
      await backend(
        net.createServer({ allowHalfOpen: true }, async (socket) => {
          // This backend answers only once the request is over (it sees our FIN).
          const request: Buffer[] = [];
          for await (const chunk of socket.iterator({ destroyOnReturn: false })) request.push(chunk as Buffer);
          socket.end(Buffer.concat([Buffer.from(`got ${Buffer.concat(request).length} bytes\n`), answer]));
        }),
      ),
    );

    const client = await connect(port);
    client.end('a request that ends with FIN');
    const reply = await readAll(client);

    const header = 'got 28 bytes\n';
    expect(reply.subarray(0, header.length).toString()).toBe(header);
    expect(reply.subarray(header.length).equals(answer)).toBe(true);
  });

  it('closes the client when the only backend refuses, and serves the next one as soon as it is back', async () => {
    const backendPort = await freePort();
    const port = await proxyTo(backendPort);

    const refused = await connect(port);
    refused.end('GET / HTTP/1.1\r\nHost: x\r\n\r\n');
    expect((await readAll(refused)).length).toBe(0);
    // nginx: a lone server is never considered unavailable, so there is no fail_timeout to sit out.
    expect(current.logs.count(/marked down/)).toBe(0);

    await backend(http.createServer((_req, res) => res.end('back again')), backendPort);
    expect((await request(port)).body.toString()).toBe('back again');
  });

  it('cuts only the client whose backend connection resets', async () => {
    let bystanderAtBackend!: (socket: net.Socket) => void;
    const bystanderSocket = new Promise<net.Socket>((resolve) => (bystanderAtBackend = resolve));
    const port = await proxyTo(
      await backend(
        net.createServer((socket) => {
          socket.on('error', () => {});
          socket.once('data', (chunk: Buffer) => {
            if (chunk.toString() === 'reset me') {
              socket.write('partial', () => socket.resetAndDestroy());
            } else {
              bystanderAtBackend(socket); // held open until the victim is gone
            }
          });
        }),
      ),
    );

    const bystander = await connect(port);
    bystander.write('hello');
    const backendSideOfBystander = await bystanderSocket;

    const victim = await connect(port);
    victim.on('error', () => {});
    victim.write('reset me');
    // Linux reports a reset that follows data as end-of-stream; the proxy passes it on.
    expect((await readAll(victim)).toString()).toBe('partial');
    // The rest of the request hits the dead backend: the proxy must cut this client, not crash.
    victim.end(randomBytes(1024 * 1024));
    await once(victim, 'close');

    backendSideOfBystander.end('still here');
    bystander.end();
    expect((await readAll(bystander)).toString()).toBe('still here');
  });

  it('destroys the backend socket when the client aborts', async () => {
    let backendSocket!: net.Socket;
    const backendSawClose = new Promise<void>((resolve) => {
      void backend(
        net.createServer((socket) => {
          backendSocket = socket;
          socket.on('error', () => {});
          socket.on('close', () => resolve());
          socket.write('never finishing');
        }),
      ).then(proxyTo).then(async (port) => {
        const client = await connect(port);
        await once(client, 'data');
        client.resetAndDestroy();
      });
    });

    await backendSawClose;
    expect(backendSocket.destroyed).toBe(true);
  });
});
