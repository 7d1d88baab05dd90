// Command-line flags: --listen HOST:PORT --backend HOST:PORT.
import { parseArgs } from 'node:util';
import { parseAddress, type Address } from './address.ts';

export interface ProxyConfig {
  listen: Address;
  backend: Address;
}

/** Thrown for anything the user typed wrong; main() prints it and exits 2. */
export class UsageError extends Error {}

export const usage = 'usage: main.ts --listen HOST:PORT --backend HOST:PORT';

export function parseFlags(argv: string[]): ProxyConfig {
  let values: { listen?: string; backend?: string };
  try {
    ({ values } = parseArgs({
      args: argv,
      options: { listen: { type: 'string' }, backend: { type: 'string' } },
      strict: true,
      allowPositionals: false,
    }));
  } catch (err) {
    throw new UsageError((err as Error).message);
  }
  return {
    listen: addressFlag('listen', values.listen),
    backend: addressFlag('backend', values.backend),
  };
}

function addressFlag(name: string, value: string | undefined): Address {
  if (value === undefined) throw new UsageError(`--${name} is required`);
  try {
    return parseAddress(value);
  } catch (err) {
    throw new UsageError(`--${name}: ${(err as Error).message}`);
  }
}
