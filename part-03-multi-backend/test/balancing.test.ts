import type net from 'node:net';
import { once } from 'node:events';
import { describe, expect, it } from 'vitest';
import type { Proxy } from '../src/proxy.ts';
import type { StrategyName } from '../src/strategies/index.ts';
import { useFixture } from './fixture.ts';
import { ask, hold as holdOne, namedBackend } from './helpers.ts';

const fx = useFixture();
let proxy: Proxy | undefined;

/** Backends named a, b, c... with these weights behind one proxy; returns its port. */
async function proxyOver(strategy: StrategyName, weights: number[], seed = 1): Promise<number> {
  const backends = [];
  for (const [i, weight] of weights.entries()) backends.push({ address: await fx.backend(namedBackend('abcde'[i]!)), weight });
  const started = await fx.proxy({ strategy, backends }, seed);
  proxy = started.proxy;
  return started.port;
}

/** Opens a connection that stays open until the test ends; resolves with who answered. */
async function hold(port: number): Promise<{ name: string; socket: net.Socket }> {
  const held = await holdOne(port);
  fx.keep(held.socket);
  return held;
}

/** Sends n connections one after another and returns who answered each. */
async function sequence(port: number, n: number): Promise<string> {
  let names = '';
  for (let i = 0; i < n; i++) names += (await ask(port)).slice(0, 1);
  return names;
}

function tally(names: string[]): Record<string, number> {
  const counts: Record<string, number> = {};
  for (const name of names) counts[name] = (counts[name] ?? 0) + 1;
  return counts;
}

describe('strategies over real connections', () => {
  it('round-robin with weights 5,1,1 gives a a b a c a a, as nginx does', async () => {
    const port = await proxyOver('round-robin', [5, 1, 1]);
    expect(await sequence(port, 14)).toBe('aabacaa'.repeat(2));
  });

  it('round-robin with equal weights takes turns', async () => {
    const port = await proxyOver('round-robin', [1, 1, 1]);
    expect(await sequence(port, 6)).toBe('abcabc');
  });

  it('random follows the weights (3:1) with a seeded generator', async () => {
    const port = await proxyOver('random', [3, 1], 42);
    const counts = tally([...(await sequence(port, 200))]);
    // Expected 150 a / 50 b; a fair coin would be far outside these bounds.
    expect(counts.a).toBeGreaterThanOrEqual(130);
    expect(counts.a).toBeLessThanOrEqual(170);
    expect(counts.a! + counts.b!).toBe(200);
  });

  it('least-connections sends each new connection to the least busy backend', async () => {
    const port = await proxyOver('least-connections', [1, 1, 1]);
    const first = [await hold(port), await hold(port), await hold(port)];
    expect(first.map((h) => h.name).sort()).toEqual(['a', 'b', 'c']);

    // b's connection ends: b now has 0 active, the others 1, so b must get the next one.
    const onB = first.find((h) => h.name === 'b')!.socket;
    onB.end();
    await once(onB, 'close');
    expect(proxy!.peers.backends[1]!.active).toBe(0);
    const next = await hold(port);
    expect(next.name).toBe('b');
  });

  it('least-connections respects weights (2:1 means twice the connections)', async () => {
    const port = await proxyOver('least-connections', [2, 1]);
    const names: string[] = [];
    for (let i = 0; i < 9; i++) {
      const h = await hold(port);
      names.push(h.name);
    }
    expect(tally(names)).toEqual({ a: 6, b: 3 });
  });

  it('power-of-two keeps held connections evenly spread', async () => {
    const port = await proxyOver('power-of-two', [1, 1, 1], 7);
    const names: string[] = [];
    for (let i = 0; i < 30; i++) {
      const h = await hold(port);
      names.push(h.name);
    }
    // Two random draws and the less busy one wins: no backend strays far from 10.
    // Over seeds 1-200, plain random lands outside 9..11 for 167 seeds, power-of-two for 3.
    for (const count of Object.values(tally(names))) {
      expect(count).toBeGreaterThanOrEqual(9);
      expect(count).toBeLessThanOrEqual(11);
    }
  });
});
