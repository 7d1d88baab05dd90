import net from 'node:net';
import http from 'node:http';
import { once } from 'node:events';
import { randomBytes } from 'node:crypto';
import { afterEach, describe, expect, it } from 'vitest';
import { startProxy, type Proxy } from '../src/proxy.ts';
import { connect, freePort, listen, readAll, request, shut } from './helpers.ts';

let proxy: Proxy | undefined;
const servers: net.Server[] = [];
const logs: string[] = [];

async function proxyTo(backendPort: number): Promise<number> {
  proxy = await startProxy({
    listen: { host: '127.0.0.1', port: 0 },
    backend: { host: '127.0.0.1', port: backendPort },
    log: (line) => logs.push(line),
  });
  return proxy.address.port;
}

async function backend<T extends net.Server>(server: T, wantedPort = 0): Promise<number> {
  const { port } = await listen(server, wantedPort);
  servers.push(server);
  return port;
}

afterEach(async () => {
  // The proxy must hold no socket once the clients are done.
  await proxy!.whenIdle();
  expect(proxy!.openSockets()).toBe(0);
  await proxy!.close(1000);
  await Promise.all(servers.splice(0).map(shut));
  logs.length = 0;
});

describe('one-shot forwarder', () => {
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

  it('serves a second client only after the first one is finished', async () => {
    const events: string[] = [];
    let releaseFirst!: () => void;
    const firstMayAnswer = new Promise<void>((resolve) => (releaseFirst = resolve));
    let accepted = 0;
    let firstArrived!: () => void;
    const firstAtBackend = new Promise<void>((resolve) => (firstArrived = resolve));
    const port = await proxyTo(
      await backend(
        net.createServer({ allowHalfOpen: true }, async (socket) => {
          const n = ++accepted;
          // The proxy is in this process, so its state at this instant is exact.
          events.push(`backend accepted connection ${n}; proxy holds ${proxy!.openSockets()} sockets`);
          if (n === 1) firstArrived();
          if (n === 1) await firstMayAnswer;
          socket.end(`answer ${n}`);
          socket.resume();
        }),
      ),
    );

    const first = await connect(port);
    first.write('request 1');
    const firstAnswer = readAll(first);
    await firstAtBackend;

    const second = await connect(port); // the kernel completes the handshake...
    second.write('request 2');
    const secondAnswer = readAll(second);
    events.push('second client connected and sent its request');
    releaseFirst(); // ...but the proxy only turns to it when the first exchange is over

    first.end();
    expect((await firstAnswer).toString()).toBe('answer 1');
    second.end();
    expect((await secondAnswer).toString()).toBe('answer 2');

    // When the backend sees connection 2, the first pair is gone: only client 2 and its
    // backend socket are open. A proxy serving both at once would hold four.
    expect(events).toEqual([
      'backend accepted connection 1; proxy holds 2 sockets',
      'second client connected and sent its request',
      'backend accepted connection 2; proxy holds 2 sockets',
    ]);
  });

  it('closes the client when the backend refuses, then serves the next client', async () => {
    const backendPort = await freePort();
    const port = await proxyTo(backendPort);

    const refused = await connect(port);
    refused.end('GET / HTTP/1.1\r\nHost: x\r\n\r\n');
    expect((await readAll(refused)).length).toBe(0);
    expect(logs.join('\n')).toMatch(/unreachable: connect ECONNREFUSED/);

    await backend(http.createServer((_req, res) => res.end('back again')), backendPort);
    expect((await request(port)).body.toString()).toBe('back again');
  });

  it('survives a backend that resets mid-exchange, then serves the next client', async () => {
    let resets = true;
    const port = await proxyTo(
      await backend(
        net.createServer((socket) => {
          socket.on('error', () => {});
          if (resets) {
            // Answer half, then reset the connection while the client is still sending.
            socket.once('data', () => socket.write('partial', () => socket.resetAndDestroy()));
          } else {
            socket.end('whole answer');
          }
        }),
      ),
    );

    const victim = await connect(port);
    victim.on('error', () => {});
    victim.write('first part of a request');
    // Linux reports a reset that follows data as end-of-stream; the proxy passes it on.
    expect((await readAll(victim)).toString()).toBe('partial');
    // The rest of the request hits the dead backend: the proxy must cut the client, not crash.
    victim.end(randomBytes(1024 * 1024));
    await once(victim, 'close');

    resets = false;
    const next = await connect(port);
    next.end();
    expect((await readAll(next)).toString()).toBe('whole answer');
    // One at a time: the next answer means the first exchange was over, and logged.
    expect(logs.join('\n')).toMatch(/connection aborted/);
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
