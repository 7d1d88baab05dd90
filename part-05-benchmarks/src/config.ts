// The proxy's configuration: its shape, its defaults, and validation that names the exact field.
import { closeSync, openSync } from 'node:fs';
import type { Address } from './address.ts';
import type { StrategyName } from './upstream/strategies/index.ts';
import { DEFAULT_LIMITS, type HeadLimits } from './http/parser.ts';
import { address, ConfigError, integer, object, onlyKeys, positiveInteger, show, strategy } from './config-checks.ts';
import { listenerFields, type ListenerFields } from './tls/tls-config.ts';

export { ConfigError } from './config-checks.ts';

export interface BackendConfig {
  address: Address;
  /** What the operator calls it (HAProxy's `server NAME ADDR`): shown in /status.json and /metrics, never sent to it. */
  name?: string;
  weight: number;
  /** Failures within failTimeoutMs that mark the backend down (0: never, as in nginx). */
  maxFails: number;
  /** The failure window, and how long a backend stays down. */
  failTimeoutMs: number;
}

export interface HealthCheckConfig {
  intervalMs: number;
  timeoutMs: number;
  /** Consecutive successes that bring a down backend back up. */
  rise: number;
  /** Consecutive failures that take an up backend down. */
  fall: number;
}

/** A named pool of backends with its own strategy (nginx's `upstream` block). */
export interface UpstreamConfig {
  strategy: StrategyName;
  backends: BackendConfig[];
}

/** Requests whose Host matches serverNames go to the named upstream (nginx's server_name). */
export interface VirtualHostConfig {
  serverNames: string[];
  upstream: string;
}

export interface BackendKeepAliveConfig {
  /** Idle connections kept per backend (nginx's `keepalive N`). */
  maxIdle: number;
  /** Close an idle backend connection after this long: shorter than the backend's own timeout. */
  idleTimeoutMs: number;
  /** Requests per backend connection before it is closed. */
  maxRequests: number;
}

export interface ProxyConfig extends ListenerFields {
  /** Processes sharing the listening socket (nginx's worker_processes). */
  workers: number;
  strategy: StrategyName;
  connectTimeoutMs: number;
  /** The upstreams by name; top-level `backends` become the one named "default". */
  upstreams: Record<string, UpstreamConfig>;
  virtualHosts: VirtualHostConfig[];
  healthCheck?: HealthCheckConfig;
  /** Longest a backend may stay silent once the request is sent, or not take body bytes (504). */
  responseTimeoutMs: number;
  /** Longest pause between two reads of a request body (408), nginx's client_body_timeout. */
  clientBodyTimeoutMs: number;
  /** Largest request body in bytes (413), nginx's client_max_body_size; 0 = no limit. */
  clientMaxBodySize: number;
  /** Close an upgraded tunnel (WebSocket) after this long with no byte either way. */
  tunnelIdleTimeoutMs: number;
  /** Wait for a client's whole request head once it has begun (408 after it). */
  clientHeaderTimeoutMs: number;
  /** Keep an idle client connection open this long between requests. */
  keepAliveTimeoutMs: number;
  /** Requests per client connection before we close it. */
  keepAliveRequests: number;
  backendKeepAlive: BackendKeepAliveConfig;
  limits: HeadLimits;
  /** Where the status page, /status.json and /metrics are served (never on `listen`). */
  admin?: Address;
  /** Access log file, or "-" for stdout; none when absent. */
  accessLog?: string;
}

export const DEFAULT_UPSTREAM = 'default';
export const MAX_WORKERS = 64;

export const DEFAULTS = {
  strategy: 'round-robin' as StrategyName,
  connectTimeoutMs: 5000,
  weight: 1,
  maxFails: 1,
  failTimeoutMs: 10_000,
  responseTimeoutMs: 60_000,
  clientBodyTimeoutMs: 60_000,
  clientMaxBodySize: 1024 * 1024,
  tunnelIdleTimeoutMs: 60_000,
  clientHeaderTimeoutMs: 10_000,
  keepAliveTimeoutMs: 60_000,
  keepAliveRequests: 1000,
  // 256, not nginx's usual 32: with more requests in flight than idle slots, every extra
  // request pays for a new connection, and a connect costs this proxy far more than nginx.
  backendKeepAlive: { maxIdle: 256, idleTimeoutMs: 4000, maxRequests: 1000 } as BackendKeepAliveConfig,
  limits: DEFAULT_LIMITS,
  workers: 1,
};

const TIMEOUT_KEYS = [
  'connectTimeoutMs', 'responseTimeoutMs', 'clientHeaderTimeoutMs', 'clientBodyTimeoutMs', 'keepAliveTimeoutMs', 'tunnelIdleTimeoutMs',
] as const;

/** JSON.parse, with the line and column of a syntax error (V8 gives an offset at best). */
export function parseJson(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch (err) {
    // The longest prefix that could still start a document ends at the mistake: search for it.
    let fine = 0;
    let broken = text.length + 1;
    while (broken - fine > 1) {
      const mid = (fine + broken) >> 1;
      if (couldStartJson(text.slice(0, mid))) fine = mid;
      else broken = mid;
    }
    const lines = text.slice(0, fine).split('\n');
    // Drop V8's offset and its quote of the text: ours says where, on one line.
    const what = (err as Error).message.replace(/( in JSON)? at position \d+$|, (\.\.\.)?"[\s\S]*$/, '');
    throw new Error(`${what} at line ${lines.length}, column ${lines.at(-1)!.length + 1}`);
  }
}

/** Valid JSON, or the start of it: the only complaint is that the text ends too soon. */
function couldStartJson(prefix: string): boolean {
  try {
    JSON.parse(prefix);
    return true;
  } catch (err) {
    const message = (err as Error).message;
    const at = / at position (\d+)$/.exec(message);
    return message === 'Unexpected end of JSON input' || (at !== null && Number(at[1]) >= prefix.length);
  }
}

/** Checks a parsed JSON document and returns a complete config with defaults filled in. */
export function validateConfig(raw: unknown): ProxyConfig {
  const doc = object(raw, '');
  onlyKeys(doc, '', [
    'listen', 'workers', 'strategy', 'backends', 'upstreams', 'virtualHosts', 'healthCheck', ...TIMEOUT_KEYS,
    'keepAliveRequests', 'clientMaxBodySize', 'backendKeepAlive', 'limits', 'admin', 'accessLog', 'listeners', 'tls',
  ]);
  const strategyName = strategy(doc.strategy ?? DEFAULTS.strategy, 'strategy');
  const upstreams: Record<string, UpstreamConfig> = {};
  if (doc.backends !== undefined) upstreams[DEFAULT_UPSTREAM] = { strategy: strategyName, backends: backendList(doc.backends, 'backends') };
  if (doc.upstreams !== undefined) {
    for (const [name, entry] of Object.entries(object(doc.upstreams, 'upstreams'))) {
      if (name === DEFAULT_UPSTREAM) throw new ConfigError(`upstreams.${name}`, 'this name is taken by the top-level "backends"');
      upstreams[name] = upstream(entry, `upstreams.${name}`, strategyName);
    }
  }
  if (Object.keys(upstreams).length === 0) throw new ConfigError('backends', 'must be a list of backends, got nothing (or give "upstreams")');
  const timeouts = Object.fromEntries(
    TIMEOUT_KEYS.map((key) => [key, positiveInteger(doc[key] ?? DEFAULTS[key], key)]),
  ) as Record<(typeof TIMEOUT_KEYS)[number], number>;
  const config: ProxyConfig = {
    ...listenerFields(doc),
    workers: workerCount(doc.workers ?? DEFAULTS.workers, 'workers'),
    strategy: strategyName,
    ...timeouts,
    upstreams,
    virtualHosts: doc.virtualHosts === undefined ? [] : virtualHosts(doc.virtualHosts, 'virtualHosts', upstreams),
    keepAliveRequests: positiveInteger(doc.keepAliveRequests ?? DEFAULTS.keepAliveRequests, 'keepAliveRequests'),
    clientMaxBodySize: integer(doc.clientMaxBodySize ?? DEFAULTS.clientMaxBodySize, 'clientMaxBodySize', 0),
    backendKeepAlive: backendKeepAlive(doc.backendKeepAlive ?? {}, 'backendKeepAlive'),
    limits: limits(doc.limits ?? {}, 'limits'),
  };
  if (doc.healthCheck !== undefined) config.healthCheck = healthCheck(doc.healthCheck, 'healthCheck');
  if (doc.admin !== undefined) config.admin = adminAddress(doc.admin, config.listen, 'admin');
  if (doc.accessLog !== undefined) config.accessLog = accessLogTarget(doc.accessLog, 'accessLog');
  return config;
}

/** The admin listener's address: its own port, never the public one. */
export function adminAddress(raw: unknown, listen: Address, path: string): Address {
  const admin = address(raw, path);
  if (admin.port !== 0 && admin.port === listen.port && admin.host === listen.host) {
    throw new ConfigError(path, `must differ from listen (${show(raw)}): the status page is never served to the public`);
  }
  return admin;
}

/** A file path, or "-" for standard output. As nginx, refuse to start (or reload) with a log that cannot be opened. */
export function accessLogTarget(raw: unknown, path: string): string {
  if (typeof raw !== 'string' || raw === '') throw new ConfigError(path, `must be a file path or "-" for standard output, got ${show(raw)}`);
  if (raw === '-') return raw;
  try {
    closeSync(openSync(raw, 'a'));
  } catch (err) {
    throw new ConfigError(path, `cannot open ${raw} for appending: ${(err as Error).message.replace(/, open .*$/, '')}`);
  }
  return raw;
}

function backendList(raw: unknown, path: string): BackendConfig[] {
  if (!Array.isArray(raw)) throw new ConfigError(path, `must be a list of backends, got ${show(raw)}`);
  if (raw.length === 0) throw new ConfigError(path, 'must name at least one backend');
  const backends = raw.map((entry, i) => backend(entry, `${path}[${i}]`));
  backends.forEach(({ name }, i) => {
    const first = backends.findIndex((other) => other.name === name);
    if (name !== undefined && first < i) throw new ConfigError(`${path}[${i}].name`, `${show(name)} is already the name of ${path}[${first}]`);
  });
  return backends;
}

function upstream(raw: unknown, path: string, defaultStrategy: StrategyName): UpstreamConfig {
  const entry = object(raw, path);
  onlyKeys(entry, path, ['strategy', 'backends']);
  return {
    strategy: strategy(entry.strategy ?? defaultStrategy, `${path}.strategy`),
    backends: backendList(entry.backends, `${path}.backends`),
  };
}

function virtualHosts(raw: unknown, path: string, upstreams: Record<string, UpstreamConfig>): VirtualHostConfig[] {
  if (!Array.isArray(raw)) throw new ConfigError(path, `must be a list, got ${show(raw)}`);
  return raw.map((item, i) => {
    const here = `${path}[${i}]`;
    const entry = object(item, here);
    onlyKeys(entry, here, ['serverNames', 'upstream', 'tls']);
    const names = entry.serverNames;
    if (!Array.isArray(names) || names.length === 0) throw new ConfigError(`${here}.serverNames`, `must be a non-empty list of host names, got ${show(names)}`);
    names.forEach((name, j) => {
      if (typeof name !== 'string' || !/^(\*\.)?[a-z0-9]([a-z0-9-]*[a-z0-9])?(\.[a-z0-9]([a-z0-9-]*[a-z0-9])?)*$/i.test(name)) {
        throw new ConfigError(`${here}.serverNames[${j}]`, `must be a host name like "a.example" or "*.b.example", got ${show(name)}`);
      }
    });
    if (typeof entry.upstream !== 'string' || !(entry.upstream in upstreams)) {
      throw new ConfigError(`${here}.upstream`, `must name an upstream (${Object.keys(upstreams).join(', ')}), got ${show(entry.upstream)}`);
    }
    return { serverNames: (names as string[]).map((n) => n.toLowerCase()), upstream: entry.upstream };
  });
}

function backendKeepAlive(raw: unknown, path: string): BackendKeepAliveConfig {
  const entry = object(raw, path);
  onlyKeys(entry, path, ['maxIdle', 'idleTimeoutMs', 'maxRequests']);
  const d = DEFAULTS.backendKeepAlive;
  return {
    maxIdle: integer(entry.maxIdle ?? d.maxIdle, `${path}.maxIdle`, 0),
    idleTimeoutMs: positiveInteger(entry.idleTimeoutMs ?? d.idleTimeoutMs, `${path}.idleTimeoutMs`),
    maxRequests: positiveInteger(entry.maxRequests ?? d.maxRequests, `${path}.maxRequests`),
  };
}

function limits(raw: unknown, path: string): HeadLimits {
  const entry = object(raw, path);
  onlyKeys(entry, path, ['requestLineBytes', 'headerBytes', 'headerCount']);
  const d = DEFAULTS.limits;
  return {
    requestLineBytes: positiveInteger(entry.requestLineBytes ?? d.requestLineBytes, `${path}.requestLineBytes`),
    headerBytes: positiveInteger(entry.headerBytes ?? d.headerBytes, `${path}.headerBytes`),
    headerCount: positiveInteger(entry.headerCount ?? d.headerCount, `${path}.headerCount`),
  };
}

function backend(raw: unknown, path: string): BackendConfig {
  const entry = object(raw, path);
  onlyKeys(entry, path, ['address', 'name', 'weight', 'maxFails', 'failTimeoutMs']);
  if (entry.name !== undefined && (typeof entry.name !== 'string' || !/^[\x21-\x7e]+$/.test(entry.name))) {
    throw new ConfigError(`${path}.name`, `must be a non-empty name of visible characters, no spaces (like "www-1"), got ${show(entry.name)}`);
  }
  return {
    address: address(entry.address, `${path}.address`),
    ...(entry.name !== undefined && { name: entry.name as string }),
    weight: positiveInteger(entry.weight ?? DEFAULTS.weight, `${path}.weight`),
    maxFails: integer(entry.maxFails ?? DEFAULTS.maxFails, `${path}.maxFails`, 0),
    failTimeoutMs: positiveInteger(entry.failTimeoutMs ?? DEFAULTS.failTimeoutMs, `${path}.failTimeoutMs`),
  };
}

function healthCheck(raw: unknown, path: string): HealthCheckConfig {
  const entry = object(raw, path);
  onlyKeys(entry, path, ['intervalMs', 'timeoutMs', 'rise', 'fall']);
  for (const key of ['intervalMs', 'timeoutMs', 'rise', 'fall']) {
    if (entry[key] === undefined) throw new ConfigError(`${path}.${key}`, 'is required');
  }
  return {
    intervalMs: positiveInteger(entry.intervalMs, `${path}.intervalMs`),
    timeoutMs: positiveInteger(entry.timeoutMs, `${path}.timeoutMs`),
    rise: positiveInteger(entry.rise, `${path}.rise`),
    fall: positiveInteger(entry.fall, `${path}.fall`),
  };
}

/** One rule for the file and the flag: 1 to MAX_WORKERS processes. */
export function workerCount(raw: unknown, path: string): number {
  if (typeof raw !== 'number' || !Number.isSafeInteger(raw) || raw < 1 || raw > MAX_WORKERS) {
    throw new ConfigError(path, `must be a whole number from 1 to ${MAX_WORKERS}, got ${show(raw)}`);
  }
  return raw;
}
