// The checks every config value goes through: each names the field it rejects (backends[2].weight).
import { parseAddress, type Address } from './address.ts';
import { STRATEGY_NAMES, type StrategyName } from './upstream/strategies/index.ts';

/** A mistake in the configuration; `path` names the field, like backends[2].weight. */
export class ConfigError extends Error {
  constructor(path: string, problem: string) {
    super(path ? `${path}: ${problem}` : problem);
  }
}

export type Json = Record<string, unknown>;

export function object(raw: unknown, path: string): Json {
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) {
    throw new ConfigError(path, `must be an object, got ${show(raw)}`);
  }
  return raw as Json;
}

/** Unknown keys are errors: a typo such as "wieght" must not be silently ignored. */
export function onlyKeys(entry: Json, path: string, allowed: string[]): void {
  for (const key of Object.keys(entry)) {
    if (!allowed.includes(key)) {
      const where = path ? `${path}.${key}` : key;
      throw new ConfigError(where, `unknown key (allowed here: ${allowed.join(', ')})`);
    }
  }
}

export function address(raw: unknown, path: string): Address {
  if (typeof raw !== 'string') throw new ConfigError(path, `must be a "HOST:PORT" string, got ${show(raw)}`);
  try {
    return parseAddress(raw);
  } catch (err) {
    throw new ConfigError(path, (err as Error).message);
  }
}

export function strategy(raw: unknown, path: string): StrategyName {
  if (typeof raw !== 'string' || !(STRATEGY_NAMES as readonly string[]).includes(raw)) {
    throw new ConfigError(path, `must be one of ${STRATEGY_NAMES.join(', ')}, got ${show(raw)}`);
  }
  return raw as StrategyName;
}

export function integer(raw: unknown, path: string, min: number): number {
  if (typeof raw !== 'number' || !Number.isSafeInteger(raw) || raw < min) {
    const what = min === 0 ? 'a whole number, 0 or more' : 'a positive integer';
    throw new ConfigError(path, `must be ${what}, got ${show(raw)}`);
  }
  return raw;
}

export function positiveInteger(raw: unknown, path: string): number {
  return integer(raw, path, 1);
}

export function show(value: unknown): string {
  return value === undefined ? 'nothing' : JSON.stringify(value);
}
