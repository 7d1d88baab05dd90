// Command-line flags: --config FILE, or --listen HOST:PORT --backend HOST:PORT [--backend ...]
// [--strategy NAME] [--connect-timeout MS]. Both paths end in validateConfig().
import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { ConfigError, parseJson, validateConfig, type ProxyConfig } from './config.ts';
import { parseAddress } from './address.ts';

export type { ProxyConfig } from './config.ts';

/** Thrown for anything the user typed wrong; main() prints it and exits 2. */
export class UsageError extends Error {}

export const usage = [
  'usage: main.ts --config FILE [--listen HOST:PORT]',
  '       main.ts --listen HOST:PORT --backend HOST:PORT [--backend HOST:PORT ...]',
  '               [--strategy round-robin|random|least-connections|power-of-two] [--connect-timeout MS]',
].join('\n');

export function parseFlags(argv: string[]): ProxyConfig {
  let values: { config?: string; listen?: string; backend?: string[]; strategy?: string; 'connect-timeout'?: string };
  try {
    ({ values } = parseArgs({
      args: argv,
      options: {
        config: { type: 'string' },
        listen: { type: 'string' },
        backend: { type: 'string', multiple: true },
        strategy: { type: 'string' },
        'connect-timeout': { type: 'string' },
      },
      strict: true,
      allowPositionals: false,
    }));
  } catch (err) {
    throw new UsageError((err as Error).message);
  }

  if (values.config !== undefined) {
    for (const flag of ['backend', 'strategy', 'connect-timeout'] as const) {
      if (values[flag] !== undefined) throw new UsageError(`--${flag} cannot be combined with --config: put it in the file`);
    }
    const config = fromFile(values.config);
    // --listen may override the file's address (handy for port 0 in tests and scripts).
    if (values.listen !== undefined) config.listen = flagAddress('listen', values.listen);
    return config;
  }

  if (values.listen === undefined) throw new UsageError('--listen is required (or give --config FILE)');
  if (values.backend === undefined) throw new UsageError('--backend is required (or give --config FILE)');
  // Check addresses here so that errors name the flag; the rest goes through validateConfig.
  flagAddress('listen', values.listen);
  for (const text of values.backend) flagAddress('backend', text);
  const timeout = values['connect-timeout'];
  try {
    return validateConfig({
      listen: values.listen,
      backends: values.backend.map((address) => ({ address })),
      ...(values.strategy !== undefined && { strategy: values.strategy }),
      ...(timeout !== undefined && { connectTimeoutMs: /^\d+$/.test(timeout) ? Number(timeout) : timeout }),
    });
  } catch (err) {
    if (!(err instanceof ConfigError)) throw err;
    // Name the flag, not the config key it fills in.
    throw new UsageError(err.message.replace(/^strategy:/, '--strategy:').replace(/^connectTimeoutMs:/, '--connect-timeout:'));
  }
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

function flagAddress(name: string, value: string) {
  try {
    return parseAddress(value);
  } catch (err) {
    throw new UsageError(`--${name}: ${(err as Error).message}`);
  }
}
