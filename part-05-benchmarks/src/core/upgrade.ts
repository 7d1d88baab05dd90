// Upgrades (WebSocket): a 101 Switching Protocols turns the exchange into the byte pump (pump.ts).
import type net from 'node:net';
import { tunnel } from './pump.ts';
import type { ExchangeContext } from './exchange-context.ts';

/** Why a 101 cannot be honoured, or undefined when it can. */
export function upgradeRefusal(asked: string | undefined, requestSent: boolean): string | undefined {
  if (asked === undefined) return 'backend switched protocols unasked';
  if (!requestSent) return 'backend switched protocols mid-body: the tunnel would carry the rest';
  return undefined;
}

/** Joins the two sockets as a tunnel; what the client sent after its request goes first. */
export function joinTunnel(client: net.Socket, backend: net.Socket, early: Buffer, context: ExchangeContext): void {
  if (early.length > 0) backend.write(early);
  const { counters, config } = context;
  tunnel(client, backend, { onBuffered: (bytes) => counters.buffered(bytes), idleTimeoutMs: config.tunnelIdleTimeoutMs });
  client.resume();
  backend.resume();
}
