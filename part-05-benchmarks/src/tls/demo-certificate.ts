// `npm start -- --tls`: a certificate for localhost, made once with openssl by a CA of its own, and
// kept in the temporary folder so that a CA trusted once stays trusted across runs.
import { existsSync, mkdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { issue, makeCa, opensslMissing, type Issued } from './openssl.ts';
import { loadCertificate } from './certificates.ts';

export const DEMO_TLS_DIR = join(tmpdir(), 'lb-from-scratch-demo-tls');

/** The demo's certificate and its CA: reused while still good, made again otherwise. Throws one line. */
export function demoCertificate(): Issued & { ca: string } {
  const ca = { cert: join(DEMO_TLS_DIR, 'ca.pem'), key: join(DEMO_TLS_DIR, 'ca.key') };
  const leaf = { cert: join(DEMO_TLS_DIR, 'localhost.pem'), key: join(DEMO_TLS_DIR, 'localhost.key') };
  if (existsSync(leaf.cert) && existsSync(ca.cert)) {
    try {
      loadCertificate(leaf.cert, leaf.key, 'demo', Date.now() + 86_400_000); // good for a day more at least
      return { ...leaf, ca: ca.cert };
    } catch {
      // expired or damaged: make new ones below
    }
  }
  const missing = opensslMissing();
  if (missing) throw new Error(`--tls makes its certificate with openssl, and ${missing}`);
  mkdirSync(DEMO_TLS_DIR, { recursive: true, mode: 0o700 });
  makeCa(DEMO_TLS_DIR, 'lb-from-scratch demo CA');
  issue(DEMO_TLS_DIR, ca, 'localhost', ['localhost', 'api.localhost', '*.api.localhost', '127.0.0.1']);
  return { ...leaf, ca: ca.cert };
}
