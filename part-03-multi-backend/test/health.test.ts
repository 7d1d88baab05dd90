import { describe, expect, it } from 'vitest';
import type { HealthCheckConfig } from '../src/config.ts';
import { useFixture, type Fixture } from './fixture.ts';
import { ask, connect, freePort, namedBackend, readAll, stalledBackend, type LogWatcher } from './helpers.ts';

const fx = useFixture();
let current: Fixture;
let logs: LogWatcher;
const FAIL_TIMEOUT = 10_000;

/** Starts the proxy over the given ports, named a, b, c... in order. */
async function proxyOver(ports: number[], healthCheck?: HealthCheckConfig, connectTimeoutMs = 5000): Promise<number> {
  current = await fx.proxy({
    connectTimeoutMs,
    backends: ports.map((port) => ({ address: `127.0.0.1:${port}`, maxFails: 1, failTimeoutMs: FAIL_TIMEOUT })),
    ...(healthCheck && { healthCheck }),
  });
  logs = current.logs;
  return current.port;
}

/** Moves the proxy's clock (passive health) by ms. */
function advance(ms: number): void {
  current.clock.now += ms;
}

async function start(name: string, port = 0): Promise<number> {
  return Number((await fx.backend(namedBackend(name), port)).split(':')[1]);
}

async function stop(port: number): Promise<void> {
  await fx.stop(`127.0.0.1:${port}`);
}

describe('health and retries', () => {
  it('retries a refused connect on the next backend; clients see no failure and lose no bytes', async () => {
    const dead = await freePort();
    const port = await proxyOver([dead, await start('b'), await start('c')]);

    const answers = [];
    for (let i = 0; i < 6; i++) answers.push(await ask(port, `hello ${i}`));

    // The first client was sent to a, refused, retried on b: its bytes waited and arrived.
    expect(answers).toEqual(['b:hello 0', 'c:hello 1', 'b:hello 2', 'c:hello 3', 'b:hello 4', 'c:hello 5']);
    expect(logs.count(/marked down/)).toBe(1);
    expect(logs.lines[0]).toMatch(
      new RegExp(`^backend 127\\.0\\.0\\.1:${dead} marked down for 10000 ms: 1 failed connect\\(s\\) .*ECONNREFUSED`),
    );
  });

  it('tries a downed backend again after fail_timeout, and keeps it if it answers', async () => {
    const aPort = await freePort();
    const port = await proxyOver([aPort, await start('b')]);
    expect(await ask(port)).toBe('b:'); // a refused, marked down; b answered

    await start('a', aPort);
    advance(FAIL_TIMEOUT - 1);
    expect(await ask(port)).toBe('b:'); // still inside fail_timeout: a is skipped
    advance(2);
    // a is back on probation; smooth round-robin gives it its turn on the second client.
    expect([await ask(port), await ask(port), await ask(port)]).toEqual(['b:', 'a:', 'b:']);
    expect(logs.count(/fail timeout over: trying it again/)).toBe(1);
    expect(logs.count(/is up again: trial connect succeeded/)).toBe(1);
  });

  it('sends a backend that fails its trial straight back down', async () => {
    const aPort = await freePort();
    const port = await proxyOver([aPort, await start('b')]);
    expect(await ask(port)).toBe('b:');
    advance(FAIL_TIMEOUT + 1);
    // a is on probation; its turn comes on the second client, whose retry goes to b.
    expect([await ask(port), await ask(port)]).toEqual(['b:', 'b:']);
    expect(logs.count(/marked down/)).toBe(2);
    expect(logs.lines.at(-1)).toMatch(/its trial connect failed/);
  });

  it('closes a client when every backend is down, then tries them all again for the next one', async () => {
    const aPort = await freePort();
    const bPort = await freePort();
    const port = await proxyOver([aPort, bPort]);

    const first = await connect(port);
    first.end('anyone?');
    expect((await readAll(first)).length).toBe(0); // both tried, both refused, client closed
    // nginx: "all peers failed, mark them as live for quick recovery".
    expect(logs.count(/every backend was down: .* marked up again/)).toBe(1);
    const second = await connect(port);
    second.end('anyone now?');
    expect((await readAll(second)).length).toBe(0); // tried both again, refused again
    expect(logs.count(/no healthy backend/)).toBe(1); // one line per outage, not per client

    await start('b', bPort);
    expect(await ask(port, 'back?')).toBe('b:back?'); // no fail_timeout to sit out
    expect(logs.count(/serving clients again/)).toBe(1);
  });

  it('active checks take a dead backend out and bring it back (fall 2, rise 2)', async () => {
    const aPort = await start('a');
    const bPort = await start('b');
    const port = await proxyOver([aPort, bPort], { intervalMs: 20, timeoutMs: 500, rise: 2, fall: 2 });

    await stop(bPort);
    await logs.waitFor(/backend 127\.0\.0\.1:\d+ marked down by health check: 2 failed probes/);
    // Only a is in rotation now; no client even tries b.
    expect([await ask(port), await ask(port), await ask(port)]).toEqual(['a:', 'a:', 'a:']);
    expect(logs.count(/marked down for/)).toBe(0);

    await start('b', bPort);
    await logs.waitFor(/marked up by health check: 2 good probes/);
    expect([await ask(port), await ask(port)].sort()).toEqual(['a:', 'b:']);
  });

  it('keeps a FIN that arrives while the backend is still connecting (pauseOnConnect)', async () => {
    // The client says nothing and half-closes at once; the proxy is still waiting on a hung
    // connect. Read early, that FIN would be spent before the tunnel listens, and nobody would
    // ever pass it on: the backend would wait for it forever, and so would the client.
    const stalled = await stalledBackend();
    try {
      const port = await proxyOver([stalled.port, await start('b')], undefined, 200);
      expect(await ask(port)).toBe('b:');
    } finally {
      await stalled.release();
    }
  });

  it('gives up on a connect that hangs after connectTimeoutMs and retries elsewhere', async () => {
    const stalled = await stalledBackend();
    try {
      const port = await proxyOver([stalled.port, await start('b')], undefined, 200);
      expect(await ask(port, 'patience')).toBe('b:patience');
      expect(logs.lines[0]).toMatch(/marked down for 10000 ms: .*connect timed out after 200 ms/);
    } finally {
      await stalled.release();
    }
  });
});
