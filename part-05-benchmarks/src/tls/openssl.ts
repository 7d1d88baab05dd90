// Certificates made on the spot with the `openssl` command: Node 20 can check an X.509 certificate
// but cannot write one, and the openssl command is on nearly every machine that has a shell.
// Used by the demo (npm start -- --tls), the tests and the benchmark; never by the proxy itself.
import { execFileSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';

export type KeyType = 'ec' | 'rsa';

/** A certificate and its key, as PEM files. */
export interface Issued {
  cert: string;
  key: string;
}

/** The reason openssl cannot be used here, or undefined when it can. */
export function opensslMissing(): string | undefined {
  try {
    execFileSync('openssl', ['version'], { stdio: 'ignore' });
    return undefined;
  } catch {
    return 'the openssl command was not found (Debian/Ubuntu: apt-get install openssl)';
  }
}

function openssl(args: string[]): void {
  execFileSync('openssl', args, { stdio: ['ignore', 'ignore', 'pipe'] });
}

const KEY: Record<KeyType, string[]> = {
  ec: ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256'], // ECDSA P-256
  rsa: ['-newkey', 'rsa:2048'],
};

/** A certificate authority for tests and the demo: trust its cert, and every certificate it signs is trusted. */
export function makeCa(dir: string, name = 'lb-from-scratch test CA', keyType: KeyType = 'ec'): Issued {
  const ca = { cert: join(dir, 'ca.pem'), key: join(dir, 'ca.key') };
  openssl(['req', '-x509', ...KEY[keyType], '-nodes', '-keyout', ca.key, '-out', ca.cert, '-days', '30', '-subj', `/CN=${name}`]);
  return ca;
}

/**
 * A certificate for `names` (DNS names, or IP addresses), signed by `ca`. days < 0 makes one that
 * has already expired (notAfter in the past), for the tests of what happens then.
 */
export function issue(dir: string, ca: Issued, file: string, names: string[], options: { days?: number; keyType?: KeyType } = {}): Issued {
  const out = { cert: join(dir, `${file}.pem`), key: join(dir, `${file}.key`) };
  const csr = join(dir, `${file}.csr`);
  const ext = join(dir, `${file}.ext`);
  const alt = names.map((n) => (/^[\d.]+$|:/.test(n) ? `IP:${n}` : `DNS:${n}`)).join(',');
  writeFileSync(ext, `subjectAltName=${alt}\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n`);
  openssl(['req', '-new', ...KEY[options.keyType ?? 'ec'], '-nodes', '-keyout', out.key, '-out', csr, '-subj', `/CN=${names[0]}`]);
  openssl(['x509', '-req', '-in', csr, '-CA', ca.cert, '-CAkey', ca.key, '-CAcreateserial', '-days', String(options.days ?? 30), '-extfile', ext, '-out', out.cert]);
  return out;
}
