// A real browser through the TLS listener: Debian's Chromium driven by playwright-core. Chromium
// cannot be told to trust a CA without a certificate database, so it is told to accept exactly
// our certificate's public key (--ignore-certificate-errors-spki-list): any other certificate
// still fails, unlike ignoreHTTPSErrors. Where no Chromium or openssl is installed, this skips.
import http from 'node:http';
import { createHash, X509Certificate } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { chromium, type Browser } from 'playwright-core';
import { useFixture } from './fixture.ts';
import { startAdmin } from '../src/observe/admin.ts';
import { makeTestCertificates, NO_OPENSSL, type TestCertificates } from './tls-helpers.ts';

const CHROMIUM = [process.env.CHROMIUM_PATH, '/usr/bin/chromium', '/usr/bin/chromium-browser'].find((path) => path && existsSync(path));
if (!CHROMIUM) console.warn('TLS browser test SKIPPED: no Chromium found. Install it (apt-get install -y chromium) or set CHROMIUM_PATH.');

const fx = useFixture();
let certs: TestCertificates | undefined;
let browser: Browser | undefined;

/** What Chromium's --ignore-certificate-errors-spki-list takes: base64 of SHA-256 of the public key. */
function spkiHash(certFile: string): string {
  const key = new X509Certificate(readFileSync(certFile)).publicKey.export({ type: 'spki', format: 'der' });
  return createHash('sha256').update(key).digest('base64');
}

beforeAll(async () => {
  if (!CHROMIUM || NO_OPENSSL) return;
  certs = makeTestCertificates();
  browser = await chromium.launch({
    executablePath: CHROMIUM,
    args: ['--no-sandbox', `--ignore-certificate-errors-spki-list=${spkiHash(certs.fallback.cert)}`],
  });
});
afterAll(async () => {
  await browser?.close();
  certs?.remove();
});

describe.skipIf(!CHROMIUM || NO_OPENSSL)('Chromium through the TLS listener', () => {
  it('loads a page over https, on HTTP/1.1, and the backend hears X-Forwarded-Proto https', async () => {
    const backend = await fx.backend(
      http.createServer((req, res) => {
        res.setHeader('content-type', 'text/html');
        res.end(`<title>through TLS</title><p id="proto">${req.headers['x-forwarded-proto']}</p>`);
      }),
    );
    const { port, proxy } = await fx.proxy({ backends: [{ address: backend }], tls: { cert: certs!.fallback.cert, key: certs!.fallback.key } });
    const page = await browser!.newPage();
    const response = await page.goto(`https://127.0.0.1:${port}/`);
    expect(response?.status()).toBe(200);
    expect(await page.textContent('#proto')).toBe('https');
    expect(await page.evaluate('performance.getEntriesByType("navigation")[0].nextHopProtocol')).toBe('http/1.1');
    expect((await response!.securityDetails())?.protocol).toBe('TLS 1.3');
    await page.context().close();
    expect(proxy.status().tls?.handshakes).toBeGreaterThanOrEqual(1);
  });

  it('the status page shows the handshakes, the resumed ones, the failures and the protocol in use', async () => {
    const backend = await fx.backend(http.createServer((_req, res) => res.end('ok')));
    const { port, proxy } = await fx.proxy({ backends: [{ address: backend }], tls: { cert: certs!.fallback.cert, key: certs!.fallback.key } });
    const page = await browser!.newPage();
    await page.goto(`https://127.0.0.1:${port}/`);
    const admin = await startAdmin({ host: '127.0.0.1', port: 0 }, async () => proxy.status());
    try {
      await page.goto(`http://127.0.0.1:${admin.address.port}/`);
      await page.waitForSelector('#global div:has-text("TLS in use")');
      const text = await page.textContent('#global');
      expect(text).toMatch(/TLS handshakes 1/);
      expect(text).toMatch(/resumed 0/);
      expect(text).toMatch(/handshakes failed 0/);
      expect(text).toMatch(/TLS in use TLSv1\.3 TLS_AES_(128|256)_GCM_SHA(256|384)/);
    } finally {
      await page.context().close();
      await admin.close();
    }
  });

  it('still refuses a certificate it was not told to accept', async () => {
    const backend = await fx.backend(http.createServer((_req, res) => res.end('should not be seen')));
    const { port } = await fx.proxy({ backends: [{ address: backend }], tls: { cert: certs!.a.cert, key: certs!.a.key } });
    const page = await browser!.newPage();
    await expect(page.goto(`https://127.0.0.1:${port}/`)).rejects.toThrow(/ERR_CERT/);
    await page.context().close();
  });
});
