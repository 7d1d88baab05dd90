// TLS through the command line, one process per test as a user runs it: bad certificates stop the
// start with one line and exit 2, several listeners, tickets that resume across workers, SIGHUP, and
// the real clients curl and openssl s_client (each skipped, with a message, where it is missing).
import http from 'node:http';
import net from 'node:net';
import { execFile, execFileSync } from 'node:child_process';
import { promisify } from 'node:util';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { listen, listeningPort, request, run, shut, waitForOutput, type RunningProcess } from './helpers.ts';
import { makeTestCertificates, NO_OPENSSL, tlsGet, type TestCertificates } from './tls-helpers.ts';

const exec = promisify(execFile);
const has = (command: string) => {
  try {
    execFileSync(command, ['--version'], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
};
const CURL = has('curl');
if (!CURL) console.warn('curl TLS test SKIPPED: no curl command (apt-get install curl).');

let certs: TestCertificates;
const servers: net.Server[] = [];
const procs: RunningProcess[] = [];
let backend = '';
beforeAll(async () => {
  if (NO_OPENSSL) return;
  certs = makeTestCertificates();
});
afterAll(() => certs?.remove());
afterEach(async () => {
  for (const proc of procs.splice(0)) {
    proc.child.kill('SIGTERM');
    expect((await proc.exit).code).toBe(0);
  }
  await Promise.all(servers.splice(0).map(shut));
});

/** A backend that says which scheme the proxy told it. */
async function startBackend(): Promise<string> {
  const { server, port } = await listen(http.createServer((req, res) => res.end(`proto=${req.headers['x-forwarded-proto']}`)));
  servers.push(server);
  return (backend = `127.0.0.1:${port}`);
}

function started(args: string[]): RunningProcess {
  const proc = run(args);
  procs.push(proc);
  return proc;
}

const tlsFlags = (cert: string, key: string) => ['--listen', '127.0.0.1:0', '--backend', backend || '127.0.0.1:9', '--tls-cert', cert, '--tls-key', key];

describe.skipIf(NO_OPENSSL)('TLS on the command line', () => {
  it.each([
    ['a key that is not the certificate\'s', () => tlsFlags(certs.a.cert, certs.b.key), () => `error: --tls-key: ${certs.b.key} is not the key of the certificate in ${certs.a.cert}`],
    ['a missing certificate file', () => tlsFlags('/nonexistent/site.pem', certs.a.key), () => 'error: --tls-cert: cannot read /nonexistent/site.pem: ENOENT: no such file or directory'],
    ['a certificate file that is not PEM', () => tlsFlags(garbage('cert.pem'), certs.a.key), () => new RegExp(`^error: --tls-cert: ${garbage('cert.pem')} is not a PEM certificate \\(.+\\)$`)],
    ['a key file that is not PEM', () => tlsFlags(certs.a.cert, garbage('key.pem')), () => new RegExp(`^error: --tls-key: ${garbage('key.pem')} is not a PEM private key \\(.+\\)$`)],
    ['an expired certificate', () => tlsFlags(certs.expired.cert, certs.expired.key), () => new RegExp(`^error: --tls-cert: ${certs.expired.cert} expired on \\d{4}-\\d\\d-\\d\\dT[\\d:.]+Z \\(renew it, then start again\\)$`)],
    ['a virtual host\'s bad key in a config file', () => ['--config', configFile({ listen: '127.0.0.1:0', backends: [{ address: '127.0.0.1:9' }], virtualHosts: [{ serverNames: ['a.test'], upstream: 'default', tls: { cert: certs.a.cert, key: certs.fallback.key } }] })], () => `error: config ${join(certs.dir, 'lb.json')}: virtualHosts[0].tls.key: ${certs.fallback.key} is not the key of the certificate in ${certs.a.cert}`],
  ])('refuses to start with %s: exit 2 and one line naming the file', async (_case, args, message) => {
    const proc = run(args());
    // A check that lets the file through starts the proxy: stop it, and fail.
    const started = await listeningPort(proc).then(() => true, () => false);
    if (started) proc.child.kill('SIGKILL');
    expect(started).toBe(false);
    expect((await proc.exit).code).toBe(2);
    const expected = message();
    const stderr = proc.stderr();
    expect(stderr.split('\n')).toHaveLength(2); // one line, then the end
    if (typeof expected === 'string') expect(stderr).toBe(`${expected}\n`);
    else expect(stderr.trimEnd()).toMatch(expected);
    expect(proc.stdout()).toBe('');
  });

  it('prints one "listening on" line per listener, in config order, and serves each as configured', async () => {
    await startBackend();
    const proc = started(['--config', configFile({
      listeners: [{ listen: '127.0.0.1:0' }, { listen: '127.0.0.1:0', tls: { cert: certs.fallback.cert, key: certs.fallback.key } }],
      backends: [{ address: backend }],
    })]);
    await waitForOutput(proc, /^pid \d+/m);
    const [plain, secure] = [...proc.stdout().matchAll(/^listening on 127\.0\.0\.1:(\d+)$/gm)].map((m) => Number(m[1]));
    expect(proc.stdout()).toMatch(/^listening on .*\nlistening on .*\npid /);
    expect((await request(plain!)).body.toString()).toBe('proto=http');
    expect((await tlsGet(secure!, certs.caPem)).text).toMatch(/\r\n\r\nproto=https$/);
  });

  it('--workers 2: a ticket from one worker resumes on the other (the primary hands out the key)', async () => {
    await startBackend();
    const proc = started([...tlsFlags(certs.fallback.cert, certs.fallback.key), '--workers', '2']);
    const port = await listeningPort(proc);
    let session = (await tlsGet(port, certs.caPem)).session;
    const resumed: boolean[] = [];
    for (let i = 0; i < 6; i++) {
      const reply = await tlsGet(port, certs.caPem, { session });
      resumed.push(reply.resumed);
      session = reply.session ?? session;
    }
    // Connections go to the workers in turn: without a shared key, every other one would be full.
    expect(resumed).toEqual([true, true, true, true, true, true]);
  });

  it('SIGHUP re-reads the certificates: a bad one rejects the whole reload, a good one is served to new connections', async () => {
    await startBackend();
    const file = join(certs.dir, 'reload.json');
    const write = (pair: { cert: string; key: string }) =>
      writeFileSync(file, JSON.stringify({ listen: '127.0.0.1:0', backends: [{ address: backend }], tls: { cert: pair.cert, key: pair.key } }));
    write(certs.fallback);
    const proc = started(['--config', file]);
    const port = await listeningPort(proc);
    await waitForOutput(proc, /^pid \d+/m);

    write(certs.expired);
    proc.child.kill('SIGHUP');
    await waitForOutput(proc, /^reload rejected, keeping the old configuration: config .*: tls\.cert: .*expired\.pem expired on /m);
    expect((await tlsGet(port, certs.caPem)).servedTo).toBe('default.test');

    write(certs.renewed);
    proc.child.kill('SIGHUP');
    await waitForOutput(proc, /^reload: new configuration in force/m);
    expect((await tlsGet(port, certs.caPem)).servedTo).toBe('renewed.test');
  });

  it.skipIf(!CURL)('curl --cacert gets the page over TLS 1.3 with ALPN http/1.1; plain curl gets the 400', async () => {
    await startBackend();
    const port = await listeningPort(started(tlsFlags(certs.fallback.cert, certs.fallback.key)));
    const { stdout, stderr } = await exec('curl', ['-sS', '-v', '--cacert', certs.ca.cert, `https://127.0.0.1:${port}/`]);
    expect(stdout).toBe('proto=https');
    expect(stderr).toMatch(/SSL connection using TLSv1\.3/);
    expect(stderr).toMatch(/ALPN: server accepted http\/1\.1|ALPN, server accepted to use http\/1\.1/);
    const plain = await exec('curl', ['-s', '-i', `http://127.0.0.1:${port}/`]);
    expect(plain.stdout).toMatch(/^HTTP\/1\.1 400 Bad Request\r\n[\s\S]*plain HTTP sent to an HTTPS port/);
  });

  it('openssl s_client verifies the chain, agrees on http/1.1, and resumes with the saved session', async () => {
    await startBackend();
    const port = await listeningPort(started(tlsFlags(certs.fallback.cert, certs.fallback.key)));
    const session = join(certs.dir, 's_client.session');
    const sClient = (extra: string[]) =>
      new Promise<string>((resolve, reject) => {
        const child = execFile('openssl', ['s_client', '-connect', `127.0.0.1:${port}`, '-CAfile', certs.ca.cert, '-alpn', 'http/1.1', '-ign_eof', ...extra], (err, stdout) =>
          err ? reject(err) : resolve(stdout));
        child.stdin!.end('GET / HTTP/1.1\r\nHost: default.test\r\nConnection: close\r\n\r\n');
      });
    const first = await sClient(['-sess_out', session]);
    expect(first).toMatch(/Verify return code: 0 \(ok\)/);
    expect(first).toMatch(/ALPN protocol: http\/1\.1/);
    expect(first).toMatch(/^New, TLSv1\.3/m);
    expect(first).toMatch(/proto=https/);
    const second = await sClient(['-sess_in', session]);
    expect(second).toMatch(/^Reused, TLSv1\.3/m);
  });
});

function garbage(name: string): string {
  const file = join(certs.dir, `garbage-${name}`);
  writeFileSync(file, '-----BEGIN CERTIFICATE-----\nnot base64 at all\n-----END CERTIFICATE-----\n');
  return file;
}

function configFile(config: unknown): string {
  const file = join(certs.dir, 'lb.json');
  writeFileSync(file, JSON.stringify(config));
  return file;
}
