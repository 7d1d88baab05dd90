// The proxy's configuration: its shape, its defaults, and validation that names the exact field.
import { parseAddress, type Address } from './address.ts';
import { STRATEGY_NAMES, type StrategyName } from './strategies/index.ts';

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

export interface ProxyConfig {
  listen: Address;
  strategy: StrategyName;
  connectTimeoutMs: number;
  backends: BackendConfig[];
  healthCheck?: HealthCheckConfig;
}

export const DEFAULTS = {
  strategy: 'round-robin' as StrategyName,
  connectTimeoutMs: 5000,
  weight: 1,
  maxFails: 1,
  failTimeoutMs: 10_000,
};

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
  onlyKeys(doc, '', ['listen', 'strategy', 'connectTimeoutMs', 'backends', 'healthCheck']);
  if (!Array.isArray(doc.backends)) throw new ConfigError('backends', `must be a list of backends, got ${show(doc.backends)}`);
  if (doc.backends.length === 0) throw new ConfigError('backends', 'must name at least one backend');
  const config: ProxyConfig = {
    listen: address(doc.listen, 'listen'),
    strategy: strategy(doc.strategy ?? DEFAULTS.strategy, 'strategy'),
    connectTimeoutMs: positiveInteger(doc.connectTimeoutMs ?? DEFAULTS.connectTimeoutMs, 'connectTimeoutMs'),
    backends: doc.backends.map((entry, i) => backend(entry, `backends[${i}]`)),
  };
  if (doc.healthCheck !== undefined) config.healthCheck = healthCheck(doc.healthCheck, 'healthCheck');
  return config;
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
