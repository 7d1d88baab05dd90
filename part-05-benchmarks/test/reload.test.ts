// Reload (SIGHUP) in one process: new connections get the new configuration, busy ones are told
// their connection ends, and an old configuration is dropped once its last client has gone.
import http from 'node:http';
import { describe, expect, it } from 'vitest';
import { useFixture } from './fixture.ts';
import { validateConfig } from '../src/config.ts';
import { connect, namedBackend, readAll } from './helpers.ts';

const fx = useFixture();

describe('reload', () => {
  it('says Connection: close on a response in flight, then forgets the old configuration', async () => {
    let release!: () => void;
    let arrived!: () => void;
    const atBackend = new Promise<void>((resolve) => (arrived = resolve));
    const old = await fx.backend(
      namedBackend('old', (req, res) => {
        req.resume();
        release = () => res.end('old, finished');
        arrived();
      }),
    );
    const fresh = await fx.backend(namedBackend('new'));
    const { port, proxy, logs } = await fx.proxy({ backends: [{ address: old }] });
    const client = await connect(port);
    client.write('GET / HTTP/1.1\r\nHost: example.test\r\n\r\n'); // keep-alive

    await atBackend;
    for (let i = 0; i < 3; i++) proxy.reload(validateConfig({ listen: '127.0.0.1:0', backends: [{ address: fresh }], workers: 2 }));
    expect(proxy.stats().generations).toBe(2); // the first still has a client; the two in between had none
    release();
    const reply = (await readAll(client)).toString();
    client.destroy();

    expect(reply).toMatch(/\r\nconnection: close\r\n[\s\S]*old, finished$/);
    await proxy.whenIdle();
    expect(proxy.stats().generations).toBe(1);
    expect(logs.count(/reload: the number of workers cannot change without a restart; still 1/)).toBe(3);
    const answer = await new Promise<string>((resolve, reject) => {
      http.get({ host: '127.0.0.1', port, agent: false }, (res) => res.setEncoding('utf8').on('data', resolve)).on('error', reject);
    });
    expect(answer).toBe('new GET /');
  });
});
