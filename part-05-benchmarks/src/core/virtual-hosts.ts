// Which upstream serves a request, by its Host header (nginx's server_name).
import type { VirtualHostConfig } from '../config.ts';

export class VirtualHosts {
  private readonly exact = new Map<string, string>();
  /** Wildcards "*.b.example" as [".b.example", upstream], longest suffix first (as nginx picks). */
  private readonly wildcards: Array<[string, string]> = [];

  constructor(
    hosts: VirtualHostConfig[],
    private readonly fallback: string | undefined,
  ) {
    for (const { serverNames, upstream } of hosts) {
      for (const name of serverNames) {
        if (name.startsWith('*.')) this.wildcards.push([name.slice(1), upstream]);
        else if (!this.exact.has(name)) this.exact.set(name, upstream);
      }
    }
    this.wildcards.sort((a, b) => b[0].length - a[0].length);
  }

  /** The upstream for a Host header value, or undefined when no site matches and there is no default. */
  route(host: string | undefined): string | undefined {
    const name = hostName(host);
    if (name !== undefined) {
      const exact = this.exact.get(name);
      if (exact !== undefined) return exact;
      for (const [suffix, upstream] of this.wildcards) if (name.endsWith(suffix)) return upstream;
    }
    return this.fallback;
  }
}

/** "Example.COM:8080" -> "example.com"; "[::1]:80" -> "::1"; a trailing dot is dropped. */
export function hostName(host: string | undefined): string | undefined {
  if (host === undefined || host === '') return undefined;
  const bracketed = /^\[([^\]]+)\](?::\d*)?$/.exec(host);
  const name = bracketed?.[1] ?? host.replace(/:\d*$/, '');
  return name.toLowerCase().replace(/\.$/, '');
}
