// `npm start -- --tls`: the demo makes its localhost certificate with openssl, says where its CA
// is, and serves HTTPS; without openssl it says so in one line. Each run gets its own TMPDIR, so
// the certificate is made anew and nothing of a reader's own demo folder is touched.
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterEach, describe, expect, it } from 'vitest';
import { listeningPort, runScript, waitForOutput, type RunningProcess } from './helpers.ts';
import { NO_OPENSSL, tlsGet } from './tls-helpers.ts';

const DEMO = fileURLToPath(new URL('../src/demo.ts', import.meta.url));
const running: RunningProcess[] = [];
const folders: string[] = [];
afterEach(() => {
  for (const proc of running.splice(0)) proc.child.kill('SIGKILL'); // a failed test leaves nothing running
  for (const folder of folders.splice(0)) rmSync(folder, { recursive: true, force: true });
});

function runDemo(args: string[], env: Record<string, string>): RunningProcess {
  const proc = runScript(DEMO, args, env);
  running.push(proc);
  return proc;
}

function freshTmp(): string {
  const folder = mkdtempSync(join(tmpdir(), 'lb-demo-tls-test-'));
  folders.push(folder);
  return folder;
}

describe('the demo with --tls', () => {
  it.skipIf(NO_OPENSSL)('makes a certificate, says where its CA is, and serves HTTPS with the protocol in the access log', async () => {
    const tmp = freshTmp();
    const proc = runDemo(['--tls', '--listen', '127.0.0.1:0', '--admin', '127.0.0.1:0'], { TMPDIR: tmp });
    const port = await listeningPort(proc);
    const [, ca] = (await waitForOutput(proc, /signed by the CA in (\S+);/))!;
    expect(ca).toBe(join(tmp, 'lb-from-scratch-demo-tls', 'ca.pem'));
    await waitForOutput(proc, new RegExp(`^  curl --cacert ${ca} -s https://localhost:${port}/a `, 'm')); // printed after the CA line

    const reply = await tlsGet(port, readFileSync(ca!), { servername: 'localhost', host: 'localhost' });
    expect(reply.servedTo).toBe('localhost');
    expect(reply.text).toMatch(/^HTTP\/1\.1 200 [\s\S]*x-forwarded-proto: https/);
    await waitForOutput(proc, /"GET \/ HTTP\/1\.1" 200 .* -- TLSv1\.3 TLS_AES_\d+_GCM_SHA\d+$/m);

    proc.child.kill('SIGTERM');
    expect((await proc.exit).code).toBe(0);
  });

  it('without openssl, says so in one line and exits 2', async () => {
    const proc = runDemo(['--tls', '--listen', '127.0.0.1:0', '--admin', '127.0.0.1:0'], { TMPDIR: freshTmp(), PATH: '/nonexistent' });
    expect(await proc.exit).toEqual({ code: 2, signal: null });
    expect(proc.stderr()).toBe('error: --tls makes its certificate with openssl, and the openssl command was not found (Debian/Ubuntu: apt-get install openssl)\n');
    expect(proc.stdout()).toBe('');
  });
});
