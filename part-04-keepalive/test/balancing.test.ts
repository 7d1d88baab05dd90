import http from 'node:http';
import { EventEmitter, once } from 'node:events';
import { describe, expect, it } from 'vitest';
import type { StrategyName } from '../src/upstream/strategies/index.ts';
import { useFixture } from './fixture.ts';
import { namedBackend, oneConnection, request } from './helpers.ts';

const fx = useFixture();

/** Backends a, b, c... with these weights; answers are held until the test releases them. */
async function pool(strategy: StrategyName, weights: number[], seed = 1) {
  const held = new Map<string, http.ServerResponse[]>();
  const arrivals = new EventEmitter();
  const backends = [];
  for (const [i, weight] of weights.entries()) {
    const name = 'abcde'[i]!;
    held.set(name, []);
    const server = namedBackend(name, (req, res) => {
      req.resume();
      if (req.url !== '/hold') return res.end(name);
      held.get(name)!.push(res);
      arrivals.emit('held', name);
    });
    backends.push({ address: await fx.backend(server), weight });
  }
  const { port, proxy } = await fx.proxy({ strategy, backends }, seed);
  const agent = fx.agent(oneConnection());
  return {
    port,
    proxy,
    /** Who answers n requests sent one after another on one keep-alive connection. */
    async sequence(n: number): Promise<string> {
      let names = '';
      for (let i = 0; i < n; i++) names += (await request(port, { agent })).body.toString();
      return names;
    },
    /** Sends a request that its backend holds; resolves once it has arrived there. */
    async hold(): Promise<{ name: string; answered: Promise<unknown> }> {
      const arrived = once(arrivals, 'held');
      const answered = request(port, { path: '/hold' });
      const [name] = (await arrived) as [string];
      return { name, answered };
    },
    release(name: string) {
      for (const res of held.get(name)!.splice(0)) res.end(name);
    },
    releaseAll() {
      for (const name of held.keys()) this.release(name);
    },
  };
}

function tally(names: string[]): Record<string, number> {
  const counts: Record<string, number> = {};
  for (const name of names) counts[name] = (counts[name] ?? 0) + 1;
  return counts;
}

describe('strategies balance requests, even on one keep-alive connection', () => {
  it('round-robin with weights 5,1,1 gives a a b a c a a, request by request', async () => {
    const p = await pool('round-robin', [5, 1, 1]);
    expect(await p.sequence(14)).toBe('aabacaa'.repeat(2));
  });

  it('random follows the weights (3:1) with a seeded generator', async () => {
    const p = await pool('random', [3, 1], 42);
    const counts = tally([...(await p.sequence(200))]);
    expect(counts.a).toBeGreaterThanOrEqual(130);
    expect(counts.a).toBeLessThanOrEqual(170);
  });

  it('least-connections counts requests in flight', async () => {
    const p = await pool('least-connections', [1, 1, 1]);
    const first = [await p.hold(), await p.hold(), await p.hold()];
    expect(first.map((h) => h.name).sort()).toEqual(['a', 'b', 'c']);

    p.release('b');
    await first.find((h) => h.name === 'b')!.answered; // b has no request in flight now
    const next = await p.hold();
    expect(next.name).toBe('b');
    p.releaseAll();
    await Promise.all([...first, next].map((h) => h.answered));
  });

  it('power-of-two keeps requests in flight evenly spread', async () => {
    const p = await pool('power-of-two', [1, 1, 1], 7);
    const holds = [];
    for (let i = 0; i < 30; i++) holds.push(await p.hold());
    for (const count of Object.values(tally(holds.map((h) => h.name)))) {
      expect(count).toBeGreaterThanOrEqual(9);
      expect(count).toBeLessThanOrEqual(11);
    }
    p.releaseAll();
    await Promise.all(holds.map((h) => h.answered));
  });
});
