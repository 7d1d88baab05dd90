import http from 'node:http';
import { randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { useFixture } from './fixture.ts';
import { request } from './helpers.ts';

const fx = useFixture();

describe('forwarding, as in the earlier parts', () => {
  it('forwards a request and a 10 MiB response byte for byte', async () => {
    const payload = randomBytes(10 * 1024 * 1024);
    const { port } = await fx.proxy({ backends: [{ address: await fx.backend(http.createServer((_req, res) => res.end(payload))) }] });

    const response = await request(port);

    expect(response.status).toBe(200);
    expect(response.body.equals(payload)).toBe(true);
  });

  it('delivers a request body of several MiB to the backend intact', async () => {
    const upload = randomBytes(6 * 1024 * 1024 + 123);
    let received = Buffer.alloc(0);
    const server = http.createServer(async (req, res) => {
      const chunks: Buffer[] = [];
      for await (const chunk of req) chunks.push(chunk as Buffer);
      received = Buffer.concat(chunks);
      res.end('stored');
    });
    const { port } = await fx.proxy({ backends: [{ address: await fx.backend(server) }], clientMaxBodySize: 8 * 1024 * 1024 });

    const response = await request(port, { method: 'POST', body: upload });

    expect(response.body.toString()).toBe('stored');
    expect(received.equals(upload)).toBe(true);
  });

  it('serves 200 concurrent clients, each with its own answer', async () => {
    const { port, proxy } = await fx.proxy({
      backends: [{ address: await fx.backend(http.createServer((req, res) => res.end(`answer for ${req.url}`))) }],
    });

    const ids = Array.from({ length: 200 }, (_, i) => i);
    const answers = await Promise.all(ids.map((i) => request(port, { path: `/client-${i}` })));

    expect(answers.map((a) => a.body.toString())).toEqual(ids.map((i) => `answer for /client-${i}`));
    expect(proxy.stats().requests).toBe(200);
  });
});
