// TLS termination in one process, over real sockets: which certificate SNI picks, what a request on
// the connection may ask for, resumption, old protocols, plain HTTP and garbage on the TLS port, the
// handshake timeout, and reload. Certificates are made at test time with openssl (tls-helpers.ts).
import http from 'node:http';
import tls from 'node:tls';
import { once } from 'node:events';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { useFixture } from './fixture.ts';
import { connect, namedBackend, raw, readAll } from './helpers.ts';
import { makeTestCertificates, NO_OPENSSL, tlsGet, tlsRefused, type TestCertificates } from './tls-helpers.ts';
import { validateConfig } from '../src/config.ts';
import { prometheusText } from '../src/observe/prometheus.ts';
import { mergeStatuses } from '../src/observe/status.ts';

const fx = useFixture();
let certs: TestCertificates;
beforeAll(() => {
  if (!NO_OPENSSL) certs = makeTestCertificates();
});
afterAll(() => certs?.remove());

/** A TLS listener with a default certificate, and two virtual hosts with their own. */
async function sites(extra: Record<string, unknown> = {}, tlsSettings: Record<string, unknown> = {}) {
  const www = await fx.backend(namedBackend('www'));
  const a = await fx.backend(namedBackend('a'));
  const b = await fx.backend(namedBackend('b'));
  return fx.proxy({
    backends: [{ address: www }],
    upstreams: { a: { backends: [{ address: a }] }, b: { backends: [{ address: b }] } },
    virtualHosts: [
      { serverNames: ['a.test', '*.a.test'], upstream: 'a', tls: { cert: certs.a.cert, key: certs.a.key } },
      { serverNames: ['b.test'], upstream: 'b', tls: { cert: certs.b.cert, key: certs.b.key } },
    ],
    tls: { cert: certs.fallback.cert, key: certs.fallback.key, ...tlsSettings },
    ...extra,
  });
}

describe.skipIf(NO_OPENSSL)('TLS termination', () => {
  it('serves the certificate SNI names, and the default one without SNI or for an unknown name', async () => {
    const { port, proxy } = await sites();
    const a = await tlsGet(port, certs.caPem, { servername: 'a.test' });
    const sub = await tlsGet(port, certs.caPem, { servername: 'x.a.test' });
    const b = await tlsGet(port, certs.caPem, { servername: 'b.test' });
    const none = await tlsGet(port, certs.caPem); // to 127.0.0.1: no SNI
    const unknown = await tlsGet(port, certs.caPem, { servername: 'nobody.test', checkServerIdentity: () => undefined });
    expect([a.servedTo, sub.servedTo, b.servedTo, none.servedTo, unknown.servedTo]).toEqual(['a.test', 'a.test', 'b.test', 'default.test', 'default.test']);
    expect(a.text).toMatch(/^HTTP\/1\.1 200 [\s\S]*\r\n\r\na GET \/$/);
    expect(b.text).toMatch(/\r\n\r\nb GET \/$/);
    expect(none.text).toMatch(/\r\n\r\nwww GET \/$/);
    expect(proxy.status().tls).toMatchObject({ handshakes: 5, resumed: 0, failures: {} });
  });

  it('answers 421 when Host needs another certificate than the SNI got; the same certificate is fine', async () => {
    const { port, logs } = await sites();
    const misdirected = await tlsGet(port, certs.caPem, { servername: 'a.test', host: 'b.test' });
    expect(misdirected.text).toMatch(/^HTTP\/1\.1 421 Misdirected Request\r\n[\s\S]*connection: close[\s\S]*opened for a\.test, whose certificate does not serve b\.test/);
    const sameCertificate = await tlsGet(port, certs.caPem, { servername: 'a.test', host: 'www.a.test' });
    expect(sameCertificate.text).toMatch(/\r\n\r\na GET \/$/);
    const noSni = await tlsGet(port, certs.caPem, { host: 'b.test' }); // nothing to check against: routed by Host
    expect(noSni.text).toMatch(/\r\n\r\nb GET \/$/);
    expect(logs.count(/^421 for GET \/ HTTP\/1\.1/)).toBe(1);
  });

  it('tells the backend X-Forwarded-Proto: https', async () => {
    const backend = await fx.backend(http.createServer((req, res) => res.end(String(req.headers['x-forwarded-proto']))));
    const { port } = await fx.proxy({ backends: [{ address: backend }], tls: { cert: certs.fallback.cert, key: certs.fallback.key } });
    expect((await tlsGet(port, certs.caPem)).text).toMatch(/\r\n\r\nhttps$/);
  });

  it('resumes a session by ticket, and counts it', async () => {
    const { port, proxy } = await sites({}, { sessionCache: false });
    const first = await tlsGet(port, certs.caPem, { servername: 'a.test' });
    expect(first.resumed).toBe(false);
    expect(first.session).toBeDefined();
    const second = await tlsGet(port, certs.caPem, { servername: 'a.test', session: first.session });
    expect(second.resumed).toBe(true);
    expect(second.protocol).toBe('TLSv1.3');
    expect(proxy.status().tls).toMatchObject({ handshakes: 2, resumed: 1 });
  });

  it('resumes a TLS 1.2 session from the session cache when tickets are off', async () => {
    const { port, proxy } = await sites({}, { sessionTickets: false });
    const first = await tlsGet(port, certs.caPem, { servername: 'b.test', maxVersion: 'TLSv1.2' });
    const second = await tlsGet(port, certs.caPem, { servername: 'b.test', maxVersion: 'TLSv1.2', session: first.session });
    expect([first.resumed, second.resumed]).toEqual([false, true]);
    expect(proxy.status().tls).toMatchObject({ handshakes: 2, resumed: 1, sessionCacheEntries: 1 });
  });

  it('resumes nothing with tickets and the cache both off', async () => {
    const { port } = await sites({}, { sessionTickets: false, sessionCache: false });
    for (const maxVersion of ['TLSv1.2', 'TLSv1.3'] as const) {
      const first = await tlsGet(port, certs.caPem, { servername: 'b.test', maxVersion });
      const second = await tlsGet(port, certs.caPem, { servername: 'b.test', maxVersion, session: first.session });
      expect(second.resumed).toBe(false);
    }
  });

  it('refuses TLS 1.0 and 1.1 clients, even ones that allow old ciphers', async () => {
    const { port, proxy } = await sites();
    for (const version of ['TLSv1', 'TLSv1.1'] as const) {
      const err = await tlsRefused(port, { minVersion: version, maxVersion: version, ciphers: 'DEFAULT@SECLEVEL=0', ca: certs.caPem });
      expect(err.message).toMatch(/alert protocol version|unsupported protocol|wrong version/i);
    }
    await proxy.whenIdle();
    expect(proxy.status().tls?.failures).toEqual({ unsupported_protocol: 2 });
  });

  it('answers plain HTTP on the TLS port with a 400 and closes, counted and logged as a refused request', async () => {
    const file = join(certs.dir, 'plain-http.log');
    const { port, proxy } = await sites({ accessLog: file });
    const reply = await raw(port, 'GET /x HTTP/1.1\r\nHost: a.test\r\n\r\n');
    expect(reply).toMatch(/^HTTP\/1\.1 400 Bad Request\r\n[\s\S]*connection: close\r\n[\s\S]*plain HTTP sent to an HTTPS port\n$/);
    expect(proxy.status().tls?.failures).toEqual({ plain_http: 1 });
    expect(proxy.status().requests.responses[3]).toBe(1);
    await proxy.close();
    expect(readFileSync(file, 'utf8')).toMatch(/^127\.0\.0\.1 - - \[.+\] "GET \/x HTTP\/1\.1" 400 \d+ "-" "-" - - - 0\.000 PR\n$/);
  });

  it('closes a connection that sends garbage, and goes on serving', async () => {
    const { port, proxy } = await sites();
    expect(await raw(port, Buffer.from([0x00, 0xff, 0x13, 0x37, 0x0a]))).toBe('');
    // A handshake record that holds no handshake: OpenSSL answers with an alert record (0x15), then closes.
    expect(await raw(port, Buffer.from([0x16, 0x03, 0x01, 0x00, 0x05, 1, 2, 3, 4, 5]))).toMatch(/^(\x15[\s\S]*)?$/);
    expect((await tlsGet(port, certs.caPem, { servername: 'a.test' })).text).toMatch(/\r\n\r\na GET \/$/);
    expect(proxy.status().tls?.failures).toMatchObject({ not_tls: 1 });
    expect(Object.values(proxy.status().tls!.failures).reduce((x, y) => x + y)).toBe(2);
  });

  it('closes a handshake that stalls, at clientHeaderTimeoutMs', async () => {
    const { port, proxy } = await sites({ clientHeaderTimeoutMs: 300 });
    const silent = await connect(port);
    const half = await connect(port);
    half.write(Buffer.from([0x16, 0x03, 0x01])); // the start of a record, then nothing
    const started = performance.now();
    await Promise.all([readAll(silent), readAll(half)]);
    expect(performance.now() - started).toBeGreaterThanOrEqual(250);
    silent.destroy();
    half.destroy();
    await proxy.whenIdle();
    expect(proxy.status().tls?.failures).toEqual({ timeout: 2 });
  });

  it('reload serves the new certificate to new connections and lets a request in flight finish on the old one', async () => {
    let held: http.ServerResponse | undefined;
    let arrived!: () => void;
    const atBackend = new Promise<void>((resolve) => (arrived = resolve));
    const address = await fx.backend(
      namedBackend('backend', (req, res) => {
        req.resume();
        held = res;
        arrived();
      }),
    );
    const config = (pair: { cert: string; key: string }) => ({ backends: [{ address }], tls: { cert: pair.cert, key: pair.key } });
    const { port, proxy } = await fx.proxy(config(certs.fallback));
    const old = tls.connect({ host: '127.0.0.1', port, ca: certs.caPem });
    await once(old, 'secureConnect');
    old.write('GET /hold HTTP/1.1\r\nHost: default.test\r\n\r\n');
    await atBackend;

    proxy.reload(validateConfig({ listen: '127.0.0.1:0', ...config(certs.renewed) }));
    const fresh = tls.connect({ host: '127.0.0.1', port, ca: certs.caPem });
    await once(fresh, 'secureConnect');
    expect(fresh.getPeerCertificate().subject.CN).toBe('renewed.test');
    fresh.destroy();

    held!.end('finished on the old certificate');
    const reply = (await readAll(old)).toString();
    expect(old.getPeerCertificate().subject.CN).toBe('default.test');
    old.destroy();
    expect(reply).toMatch(/^HTTP\/1\.1 200 [\s\S]*connection: close\r\n[\s\S]*finished on the old certificate$/);
  });

  it('reload says what needs a restart, and will not turn a TLS listener plain', async () => {
    const address = await fx.backend(namedBackend('backend'));
    const config = (extra: Record<string, unknown>) => ({ backends: [{ address }], ...extra });
    const { port, proxy, logs } = await fx.proxy(config({ tls: { cert: certs.fallback.cert, key: certs.fallback.key } }));
    proxy.reload(validateConfig({ listen: '127.0.0.1:0', ...config({ tls: { cert: certs.renewed.cert, key: certs.renewed.key, sessionCache: false } }) }));
    expect(logs.count(/^reload: tls\.sessionCache and tls\.ticketKeyRotationMs cannot change without a restart$/)).toBe(1);
    expect((await tlsGet(port, certs.caPem)).servedTo).toBe('renewed.test'); // the certificate did change
    proxy.reload(validateConfig({ listen: '127.0.0.1:0', ...config({}) }));
    expect(logs.count(/^reload: listeners cannot be added, removed or changed to or from TLS without a restart/)).toBe(1);
    expect((await tlsGet(port, certs.caPem)).servedTo).toBe('renewed.test');
  });

  it('/metrics has the lb_tls_* series, and workers\' figures add up', async () => {
    const { port, proxy } = await sites();
    await tlsGet(port, certs.caPem, { servername: 'a.test' });
    await raw(port, 'GET / HTTP/1.1\r\n\r\n');
    const status = { ...proxy.status(), processes: [] };
    const text = prometheusText(mergeStatuses([status, structuredClone(status)]));
    expect(text).toMatch(/^lb_tls_handshakes_total\{protocol="TLSv1\.3",cipher="TLS_AES_256_GCM_SHA384"\} 2$/m);
    expect(text).toMatch(/^lb_tls_resumed_handshakes_total 0$/m);
    expect(text).toMatch(/^lb_tls_handshake_failures_total\{reason="plain_http"\} 2$/m);
    expect(text).toMatch(/^# TYPE lb_tls_session_cache_entries gauge$/m);
  });

  it('writes $ssl_protocol $ssl_cipher at the end of access log lines when asked to', async () => {
    const file = join(certs.dir, 'access.log');
    const { port, proxy } = await sites({ accessLog: file }, { logProtocol: true });
    await tlsGet(port, certs.caPem, { servername: 'a.test', maxVersion: 'TLSv1.2' });
    await proxy.close();
    expect(readFileSync(file, 'utf8')).toMatch(/"GET \/ HTTP\/1\.1" 200 .* -- TLSv1\.2 ECDHE-ECDSA-AES(128|256)-GCM-SHA(256|384)\n$/);
  });
});
