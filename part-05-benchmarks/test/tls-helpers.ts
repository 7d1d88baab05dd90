// TLS for the tests: a CA and certificates made at test time with the openssl command (nothing is
// checked in), and a TLS client that says which certificate it was served and whether it resumed.
import tls from 'node:tls';
import { once } from 'node:events';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { issue, makeCa, opensslMissing, type Issued } from '../src/tls/openssl.ts';
import { readAll } from './helpers.ts';

/** Why the TLS tests cannot run here (no openssl command), or undefined. */
export const NO_OPENSSL = opensslMissing();
if (NO_OPENSSL) console.warn(`TLS tests SKIPPED: ${NO_OPENSSL}. They make their certificates with it at test time.`);

export interface TestCertificates {
  dir: string;
  ca: Issued;
  /** Names: default.test and 127.0.0.1 (the listener's default certificate). */
  fallback: Issued;
  a: Issued;
  b: Issued;
  /** A second certificate for the default names, to see a reload swap them. */
  renewed: Issued;
  expired: Issued;
  caPem: Buffer;
  remove(): void;
}

/** Makes the test CA and its certificates in a new temporary folder. */
export function makeTestCertificates(): TestCertificates {
  const dir = mkdtempSync(join(tmpdir(), 'lb-tls-test-'));
  const ca = makeCa(dir);
  return {
    dir,
    ca,
    fallback: issue(dir, ca, 'default', ['default.test', '127.0.0.1']),
    a: issue(dir, ca, 'a', ['a.test', '*.a.test']),
    b: issue(dir, ca, 'b', ['b.test']),
    renewed: issue(dir, ca, 'renewed', ['renewed.test', '127.0.0.1']),
    expired: issue(dir, ca, 'expired', ['expired.test'], { days: -1 }),
    caPem: readFileSync(ca.cert),
    remove: () => rmSync(dir, { recursive: true, force: true }),
  };
}

export interface TlsReply {
  /** The whole response, as text. */
  text: string;
  /** The served certificate's first name (its CN). */
  servedTo: string;
  resumed: boolean;
  protocol: string | null;
  /** A session to resume with, if the server gave one. */
  session: Buffer | undefined;
}

export interface TlsRequestOptions extends tls.ConnectionOptions {
  path?: string;
  host?: string;
}

/**
 * One GET over a new TLS connection to 127.0.0.1 (SNI only when `servername` is given), with the
 * test CA trusted; resolves once the proxy has closed it (Connection: close).
 */
export async function tlsGet(port: number, ca: Buffer, options: TlsRequestOptions = {}): Promise<TlsReply> {
  const { path = '/', host = options.servername || 'default.test', ...connect } = options;
  const socket = tls.connect({ host: '127.0.0.1', port, ca, ALPNProtocols: ['http/1.1'], ...connect });
  let session: Buffer | undefined;
  socket.on('session', (s: Buffer) => (session = s));
  await once(socket, 'secureConnect');
  socket.write(`GET ${path} HTTP/1.1\r\nHost: ${host}\r\nConnection: close\r\n\r\n`);
  const text = (await readAll(socket)).toString();
  const reply = {
    text,
    servedTo: String(socket.getPeerCertificate().subject?.CN),
    resumed: socket.isSessionReused(),
    protocol: socket.getProtocol(),
    session,
  };
  socket.destroy();
  return reply;
}

/** A TLS connection that fails: resolves with the error the client saw. */
export async function tlsRefused(port: number, options: tls.ConnectionOptions): Promise<Error> {
  const socket = tls.connect({ host: '127.0.0.1', port, ...options });
  const [err] = (await Promise.race([once(socket, 'error'), once(socket, 'secureConnect').then(() => [new Error('connected')])])) as [Error];
  socket.destroy();
  if (err.message === 'connected') throw new Error('the TLS handshake succeeded');
  return err;
}
