// The proxy's configuration: its shape, its defaults, and validation that names the exact field.
import { parseAddress, type Address } from './address.ts';
import { STRATEGY_NAMES, type StrategyName } from './upstream/strategies/index.ts';
import { DEFAULT_LIMITS, type HeadLimits } from './http/parser.ts';

export interface BackendConfig {
  address: Address;
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
  /** Idle connections kept per backend (nginx's `keepalive 32`). */
  maxIdle: number;
  /** Close an idle backend connection after this long: shorter than the backend's own timeout. */
  idleTimeoutMs: number;
  /** Requests per backend connection before it is closed. */
  maxRequests: number;
}

export interface ProxyConfig {
  listen: Address;
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
}

export const DEFAULT_UPSTREAM = 'default';

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
  backendKeepAlive: { maxIdle: 32, idleTimeoutMs: 4000, maxRequests: 1000 } as BackendKeepAliveConfig,
  limits: DEFAULT_LIMITS,
};

const TIMEOUT_KEYS = [
  'connectTimeoutMs', 'responseTimeoutMs', 'clientHeaderTimeoutMs', 'clientBodyTimeoutMs', 'keepAliveTimeoutMs', 'tunnelIdleTimeoutMs',
] as const;

/** A mistake in the configuration; `path` names the field, like backends[2].weight. */
export class ConfigError extends Error {
  constructor(path: string, problem: string) {
    super(path ? `${path}: ${problem}` : problem);
  }
}

type Json = Record<string, unknown>;

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
    'listen', 'strategy', 'backends', 'upstreams', 'virtualHosts', 'healthCheck', ...TIMEOUT_KEYS,
    'keepAliveRequests', 'clientMaxBodySize', 'backendKeepAlive', 'limits',
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
    listen: address(doc.listen, 'listen'),
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
  return config;
}

function backendList(raw: unknown, path: string): BackendConfig[] {
  if (!Array.isArray(raw)) throw new ConfigError(path, `must be a list of backends, got ${show(raw)}`);
  if (raw.length === 0) throw new ConfigError(path, 'must name at least one backend');
  return raw.map((entry, i) => backend(entry, `${path}[${i}]`));
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
    onlyKeys(entry, here, ['serverNames', 'upstream']);
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
  onlyKeys(entry, path, ['address', 'weight', 'maxFails', 'failTimeoutMs']);
  return {
    address: address(entry.address, `${path}.address`),
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

function object(raw: unknown, path: string): Json {
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) {
    throw new ConfigError(path, `must be an object, got ${show(raw)}`);
  }
  return raw as Json;
}

/** Unknown keys are errors: a typo such as "wieght" must not be silently ignored. */
function onlyKeys(entry: Json, path: string, allowed: string[]): void {
  for (const key of Object.keys(entry)) {
    if (!allowed.includes(key)) {
      const where = path ? `${path}.${key}` : key;
      throw new ConfigError(where, `unknown key (allowed here: ${allowed.join(', ')})`);
    }
  }
}

function address(raw: unknown, path: string): Address {
  if (typeof raw !== 'string') throw new ConfigError(path, `must be a "HOST:PORT" string, got ${show(raw)}`);
  try {
    return parseAddress(raw);
  } catch (err) {
    throw new ConfigError(path, (err as Error).message);
  }
}

function strategy(raw: unknown, path: string): StrategyName {
  if (typeof raw !== 'string' || !(STRATEGY_NAMES as readonly string[]).includes(raw)) {
    throw new ConfigError(path, `must be one of ${STRATEGY_NAMES.join(', ')}, got ${show(raw)}`);
  }
  return raw as StrategyName;
}

function integer(raw: unknown, path: string, min: number): number {
  if (typeof raw !== 'number' || !Number.isSafeInteger(raw) || raw < min) {
    const what = min === 0 ? 'a whole number, 0 or more' : 'a positive integer';
    throw new ConfigError(path, `must be ${what}, got ${show(raw)}`);
  }
  return raw;
}

function positiveInteger(raw: unknown, path: string): number {
  return integer(raw, path, 1);
}

function show(value: unknown): string {
  return value === undefined ? 'nothing' : JSON.stringify(value);
}
