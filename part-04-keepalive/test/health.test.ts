import net from 'node:net';
import { describe, expect, it } from 'vitest';
import { useFixture } from './fixture.ts';
import { freePort, namedBackend, oneConnection, request, stalledBackend } from './helpers.ts';

const fx = useFixture();
const FAIL_TIMEOUT = 10_000;

describe('health and retries, per request', () => {
  it('retries a refused connect on the next backend, even for a POST with a body', async () => {
    const dead = `127.0.0.1:${await freePort()}`;
    const server = namedBackend('b', (req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (chunk: Buffer) => chunks.push(chunk));
      req.on('end', () => res.end(`b got ${Buffer.concat(chunks)}`));
    });
    const { port, logs } = await fx.proxy({ backends: [{ address: dead }, { address: await fx.backend(server) }] });

    // Nothing reached the refusing backend, so even a POST is safe to send elsewhere.
    const reply = await request(port, { method: 'POST', body: 'order #1' });

    expect(reply.body.toString()).toBe('b got order #1');
    expect(logs.count(/marked down for 10000 ms: 1 failure\(s\)/)).toBe(1);
  });

  it('retries an idempotent request on another backend when the first resets before answering', async () => {
    const resetting = net.createServer((socket) => socket.once('data', () => socket.resetAndDestroy()));
    const { port } = await fx.proxy({
      backends: [{ address: await fx.backend(resetting) }, { address: await fx.backend(namedBackend('b')) }],
    });
    expect((await request(port, { path: '/page' })).body.toString()).toBe('b GET /page');
  });

  it('does not retry a POST whose request went out before the backend reset: 502', async () => {
    let posts = 0;
    const resetting = net.createServer((socket) => socket.once('data', () => socket.resetAndDestroy()));
    const counting = namedBackend('b', (req, res) => {
      posts++;
      req.resume();
      res.end('charged');
    });
    const { port } = await fx.proxy({
      backends: [{ address: await fx.backend(resetting) }, { address: await fx.backend(counting) }],
    });
    // Round-robin sends the first request to the resetting backend.
    expect((await request(port, { method: 'POST', path: '/charge' })).status).toBe(502);
    expect(posts).toBe(0);
  });

  it('tries a downed backend again after fail_timeout, and keeps it if it answers', async () => {
    const aPort = await freePort();
    const { port, clock, logs } = await fx.proxy({
      backends: [{ address: `127.0.0.1:${aPort}` }, { address: await fx.backend(namedBackend('b')) }],
    });
    const agent = fx.agent(oneConnection());
    const ask = async () => (await request(port, { agent })).body.toString();
    expect(await ask()).toBe('b GET /'); // a refused, marked down; b answered

    await fx.backend(namedBackend('a'), aPort);
    clock.now += FAIL_TIMEOUT - 1;
    expect(await ask()).toBe('b GET /');
    clock.now += 2;
    expect([await ask(), await ask(), await ask()]).toEqual(['b GET /', 'a GET /', 'b GET /']);
    expect(logs.count(/fail timeout over: trying it again/)).toBe(1);
    expect(logs.count(/is up again: trial request succeeded/)).toBe(1);
  });

  it('answers 502 while its only backend is down, and recovers as soon as it returns', async () => {
    const aPort = await freePort();
    const { port, logs } = await fx.proxy({ backends: [{ address: `127.0.0.1:${aPort}` }] });

    expect((await request(port)).status).toBe(502);
    expect((await request(port)).status).toBe(502); // tried again: a lone backend is never marked down

    await fx.backend(namedBackend('a'), aPort);
    expect((await request(port)).body.toString()).toBe('a GET /');
    expect(logs.count(/marked down/)).toBe(0);
  });

  it('active checks take a dead backend out and bring it back', async () => {
    const a = await fx.backend(namedBackend('a'));
    const b = await fx.backend(namedBackend('b'));
    const { port, logs } = await fx.proxy({
      backends: [{ address: a }, { address: b }],
      healthCheck: { intervalMs: 20, timeoutMs: 500, rise: 2, fall: 2 },
    });
    const ask = async () => (await request(port)).body.toString();

    await fx.stop(b);
    await logs.waitFor(/marked down by health check: 2 failed probes/);
    expect([await ask(), await ask(), await ask()]).toEqual(['a GET /', 'a GET /', 'a GET /']);

    await fx.backend(namedBackend('b'), Number(b.split(':')[1]));
    await logs.waitFor(/marked up by health check: 2 good probes/);
    expect([await ask(), await ask()].sort()).toEqual(['a GET /', 'b GET /']);
  });

  it('gives up on a hanging connect after connectTimeoutMs and uses the next backend', async () => {
    const stalled = await stalledBackend();
    try {
      const { port, logs } = await fx.proxy({
        backends: [{ address: `127.0.0.1:${stalled.port}` }, { address: await fx.backend(namedBackend('b')) }],
        connectTimeoutMs: 150,
      });
      expect((await request(port)).body.toString()).toBe('b GET /');
      expect(logs.lines[0]).toMatch(/marked down for 10000 ms: .*connect timed out after 150 ms/);
    } finally {
      await stalled.release();
    }
  });
});
