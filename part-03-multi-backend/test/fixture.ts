// One proxy per test over real backends, torn down after it: the proxy must then hold no socket.
import type net from 'node:net';
import { afterEach, expect } from 'vitest';
import { startProxy, type Proxy } from '../src/proxy.ts';
import { validateConfig } from '../src/config.ts';
import { listen, LogWatcher, namedBackend, seededRandom, shut } from './helpers.ts';

export interface Fixture {
  proxy: Proxy;
  port: number;
  logs: LogWatcher;
  /** The proxy's clock for passive health; tests move it by hand. */
  clock: { now: number };
}

export function useFixture() {
  let current: Fixture | undefined;
  const servers: net.Server[] = [];
  const kept: net.Socket[] = [];

  afterEach(async () => {
    for (const socket of kept.splice(0)) socket.end();
    if (current) {
      // Once the clients are done, the proxy must let go of every socket by itself.
      await current.proxy.whenIdle();
      expect(current.proxy.openSockets()).toBe(0);
      await current.proxy.close(1000);
      current = undefined;
    }
    await Promise.all(servers.splice(0).map(shut));
  });

  return {
    /** Starts a backend server on 127.0.0.1 and returns its "127.0.0.1:PORT" address. */
    async backend(server: net.Server = namedBackend('backend'), port = 0): Promise<string> {
      const bound = await listen(server, port);
      servers.push(server);
      return `127.0.0.1:${bound.port}`;
    },
    /** Stops a backend started with backend() (and its connections). */
    async stop(address: string): Promise<void> {
      const index = servers.findIndex((s) => `127.0.0.1:${(s.address() as net.AddressInfo | null)?.port}` === address);
      const [server] = servers.splice(index, 1);
      await shut(server!);
    },
    /** Starts the proxy with a config (JSON as in a config file; listen is filled in). */
    async proxy(config: Record<string, unknown>, seed = 1): Promise<Fixture> {
      const logs = new LogWatcher();
      const clock = { now: 0 };
      const proxy = await startProxy({
        ...validateConfig({ listen: '127.0.0.1:0', ...config }),
        log: logs.log,
        now: () => clock.now,
        random: seededRandom(seed),
      });
      current = { proxy, port: proxy.address.port, logs, clock };
      return current;
    },
    /** A client socket the test leaves open; it is ended after the test. */
    keep(socket: net.Socket): net.Socket {
      kept.push(socket);
      return socket;
    },
  };
}
