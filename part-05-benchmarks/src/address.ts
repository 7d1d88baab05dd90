// HOST:PORT parsing shared by every flag that names a socket address.

export interface Address {
  host: string;
  port: number;
}

/** Parses "127.0.0.1:8080" (or "[::1]:8080"); throws a message naming what is wrong. */
export function parseAddress(text: string): Address {
  const match = /^(?:\[([^\]]+)\]|([^:\s]+)):(\d{1,5})$/.exec(text);
  if (!match) throw new Error(`expected HOST:PORT, got "${text}"`);
  const host = (match[1] ?? match[2]) as string;
  const port = Number(match[3]);
  if (port > 65535) throw new Error(`port must be 0-65535, got ${port} in "${text}"`);
  return { host, port };
}

export function formatAddress({ host, port }: Address): string {
  return host.includes(':') ? `[${host}]:${port}` : `${host}:${port}`;
}
