// Command-line flags: --config FILE, or --listen HOST:PORT --backend HOST:PORT [--backend ...]
// [--strategy NAME] and the timeouts in milliseconds. Both paths end in validateConfig().
import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { accessLogTarget, adminAddress, ConfigError, parseJson, validateConfig, workerCount as validWorkerCount, type ProxyConfig } from './config.ts';
import { parseAddress } from './address.ts';

export type { ProxyConfig } from './config.ts';

/** Thrown for anything the user typed wrong; main() prints it and exits 2. */
export class UsageError extends Error {
  /** Wrong flags get the usage after the message; a wrong value or file gets one line. */
  constructor(message: string, readonly showUsage = false) {
    super(message);
  }
}

export const usage = [
  'usage: main.ts --config FILE [--listen HOST:PORT] [--workers N]',
  '       main.ts --listen HOST:PORT --backend HOST:PORT [--backend HOST:PORT ...] [--workers N]',
  '               [--strategy round-robin|random|least-connections|power-of-two]',
  '               [--connect-timeout MS] [--response-timeout MS] [--client-header-timeout MS] [--keepalive-timeout MS]',
  '               [--client-body-timeout MS] [--tunnel-idle-timeout MS] [--client-max-body-size BYTES (0: no limit)]',
  '               [--tls-cert FILE --tls-key FILE (the listener speaks TLS; more listeners and settings: the file)]',
  '       either way: [--admin HOST:PORT (status page, /status.json, /metrics)] [--access-log FILE|-]',
].join('\n');

/** Number flags (timeouts in ms, sizes in bytes) and the config keys they fill in. */
const NUMBER_FLAGS = {
  'connect-timeout': 'connectTimeoutMs',
  'response-timeout': 'responseTimeoutMs',
  'client-header-timeout': 'clientHeaderTimeoutMs',
  'client-body-timeout': 'clientBodyTimeoutMs',
  'keepalive-timeout': 'keepAliveTimeoutMs',
  'tunnel-idle-timeout': 'tunnelIdleTimeoutMs',
  'client-max-body-size': 'clientMaxBodySize',
} as const;
type NumberFlag = keyof typeof NUMBER_FLAGS;

export function parseFlags(argv: string[]): ProxyConfig {
  let values: { config?: string; listen?: string; backend?: string[]; strategy?: string; workers?: string; admin?: string; 'access-log'?: string; 'tls-cert'?: string; 'tls-key'?: string } & Partial<
    Record<NumberFlag, string>
  >;
  try {
    ({ values } = parseArgs({
      args: argv,
      options: {
        config: { type: 'string' },
        listen: { type: 'string' },
        backend: { type: 'string', multiple: true },
        strategy: { type: 'string' },
        workers: { type: 'string' },
        admin: { type: 'string' },
        'access-log': { type: 'string' },
        'tls-cert': { type: 'string' },
        'tls-key': { type: 'string' },
        ...Object.fromEntries(Object.keys(NUMBER_FLAGS).map((flag) => [flag, { type: 'string' as const }])),
      },
      strict: true,
      allowPositionals: false,
    }));
  } catch (err) {
    throw new UsageError((err as Error).message, true);
  }

  if (values.config !== undefined) {
    for (const flag of ['backend', 'strategy', 'tls-cert', 'tls-key', ...(Object.keys(NUMBER_FLAGS) as NumberFlag[])] as const) {
      if (values[flag] !== undefined) throw new UsageError(`--${flag} cannot be combined with --config: put it in the file`, true);
    }
    const config = fromFile(values.config);
    // --listen and --workers may override the file (handy for port 0 in tests and scripts).
    if (values.listen !== undefined) config.listen = flagAddress('listen', values.listen);
    if (values.workers !== undefined) config.workers = workerCount(values.workers);
    return withObservability(config, values.admin, values['access-log']);
  }

  if (values.listen === undefined) throw new UsageError('--listen is required (or give --config FILE)', true);
  if (values.backend === undefined) throw new UsageError('--backend is required (or give --config FILE)', true);
  // Check addresses here so that errors name the flag; the rest goes through validateConfig.
  flagAddress('listen', values.listen);
  for (const text of values.backend) flagAddress('backend', text);
  if ((values['tls-cert'] === undefined) !== (values['tls-key'] === undefined)) throw new UsageError('--tls-cert and --tls-key go together', true);
  const timeouts: Record<string, unknown> = {};
  for (const [flag, key] of Object.entries(NUMBER_FLAGS)) {
    const text = values[flag as NumberFlag];
    if (text !== undefined) timeouts[key] = /^\d+$/.test(text) ? Number(text) : text;
  }
  let config: ProxyConfig;
  try {
    config = validateConfig({
      listen: values.listen,
      backends: values.backend.map((address) => ({ address })),
      ...(values.strategy !== undefined && { strategy: values.strategy }),
      ...(values.workers !== undefined && { workers: workerCount(values.workers) }),
      ...timeouts,
      ...(values['tls-cert'] !== undefined && { tls: { cert: values['tls-cert'], key: values['tls-key'] } }),
    });
  } catch (err) {
    if (!(err instanceof ConfigError)) throw err;
    // Name the flag, not the config key it fills in.
    let message = err.message.replace(/^strategy:/, '--strategy:').replace(/^tls\.(cert|key):/, '--tls-$1:');
    for (const [flag, key] of Object.entries(NUMBER_FLAGS)) message = message.replace(new RegExp(`^${key}:`), `--${flag}:`);
    throw new UsageError(message);
  }
  return withObservability(config, values.admin, values['access-log']);
}

/** --admin and --access-log, with the file or without it (they override the file's). */
function withObservability(config: ProxyConfig, admin: string | undefined, accessLog: string | undefined): ProxyConfig {
  try {
    if (admin !== undefined) config.admin = adminAddress(admin, config.listen, '--admin');
    if (accessLog !== undefined) config.accessLog = accessLogTarget(accessLog, '--access-log');
  } catch (err) {
    if (!(err instanceof ConfigError)) throw err;
    throw new UsageError(err.message);
  }
  return config;
}

function fromFile(file: string): ProxyConfig {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    throw new UsageError(`cannot read config ${file}: ${(err as Error).message}`);
  }
  let raw: unknown;
  try {
    raw = parseJson(text);
  } catch (err) {
    throw new UsageError(`config ${file}: not valid JSON: ${(err as Error).message}`);
  }
  try {
    return validateConfig(raw);
  } catch (err) {
    if (err instanceof ConfigError) throw new UsageError(`config ${file}: ${err.message}`);
    throw err;
  }
}

function workerCount(text: string): number {
  try {
    return validWorkerCount(/^\d+$/.test(text) ? Number(text) : text, '--workers');
  } catch (err) {
    throw new UsageError((err as Error).message);
  }
}

function flagAddress(name: string, value: string) {
  try {
    return parseAddress(value);
  } catch (err) {
    throw new UsageError(`--${name}: ${(err as Error).message}`);
  }
}
