import net from 'node:net';
import { basename } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterEach, describe, expect, it } from 'vitest';
import { listen, listeningPort, raw, request, runScript, shut, waitForOutput, type RunningProcess } from './helpers.ts';

const DEMO = fileURLToPath(new URL('../src/demo.ts', import.meta.url));
const PART = basename(fileURLToPath(new URL('..', import.meta.url))); // the folder's name, as a user types it
const demos: RunningProcess[] = [];

/** Runs src/demo.ts (what `npm start` runs) in its own process. */
function runDemo(args: string[]): RunningProcess {
  const proc = runScript(DEMO, args);
  demos.push(proc);
  return proc;
}

/** Exit 2 with exactly one line on stderr, nothing on stdout and no stack trace. */
async function expectOneLineError(proc: RunningProcess): Promise<string> {
  expect(await proc.exit).toEqual({ code: 2, signal: null });
  expect(proc.stdout()).toBe('');
  expect(proc.stderr()).toMatch(/^error: [^\n]+\n$/);
  return proc.stderr();
}

const ANY_PORTS = ['--listen', '127.0.0.1:0', '--admin', '127.0.0.1:0'];

/** The demo's /status.json, as much of it as these tests read. */
interface DemoStatus {
  upstreams: Array<{ backends: Array<{ state: string; active: number }> }>;
  lab: Array<{ backend: string; label: string }>;
}
async function status(adminPort: number): Promise<DemoStatus> {
  return JSON.parse((await request(adminPort, { path: '/status.json' })).body.toString()) as DemoStatus;
}
const backendRows = (s: DemoStatus) => s.upstreams.flatMap((u) => u.backends);

const servers: net.Server[] = [];
afterEach(async () => {
  await Promise.all(servers.splice(0).map(shut));
  for (const proc of demos.splice(0)) proc.child.kill('SIGKILL'); // a failed test leaves nothing running
});

describe('the demo (npm start)', () => {
  it('--help prints its usage on stdout and exits 0', async () => {
    const proc = runDemo(['--help']);
    expect(await proc.exit).toEqual({ code: 0, signal: null });
    expect(proc.stdout()).toMatch(/^usage: npm start -- \[--listen HOST:PORT\]/);
    expect(proc.stderr()).toBe('');
  });

  it('an unknown flag gets one line and exit 2', async () => {
    expect(await expectOneLineError(runDemo(['--bogus']))).toMatch(/Unknown option '--bogus'/);
  });

  it.each([
    ['--workers', '2'],
    ['--backend', '127.0.0.1:9'],
    ['--config', 'example.json'],
  ])('%s, which only main.ts can honour, gets one line that points to main.ts', async (flag, value) => {
    const message = await expectOneLineError(runDemo([flag, value]));
    expect(message).toContain(`${flag} is not for the demo`);
    expect(message).toContain(`npx tsx ${PART}/src/main.ts `);
  });

  it.each(['--listen', '--admin'])('a busy port for %s suggests another port, not the one that failed', async (flag) => {
    const { server, port } = await listen(net.createServer());
    servers.push(server);
    const message = await expectOneLineError(runDemo([...ANY_PORTS, flag, `127.0.0.1:${port}`]));
    expect(message).toContain(`cannot listen on 127.0.0.1:${port}: something else is listening there`);
    expect(message).toContain(`npm start -- ${flag} 127.0.0.1:${port + 10}`);
  });

  // docs/nginx.md starts the demo this way; the default keeps an idle client for 60 s.
  it("takes main.ts's flags (--keepalive-timeout), forwards to its backends and exits 0 on SIGINT", async () => {
    const proc = runDemo([...ANY_PORTS, '--keepalive-timeout', '300']);
    const port = await listeningPort(proc);
    const reply = await raw(port, 'GET /a HTTP/1.1\r\nHost: localhost\r\n\r\n'); // returns once the proxy closes
    expect(reply).toMatch(/^HTTP\/1\.1 200 [\s\S]*\r\n\r\n[0-9a-f]+\r\nwww-\d answered GET \/a\n/);
    proc.child.kill('SIGINT');
    expect(await proc.exit).toEqual({ code: 0, signal: null });
  }, 10_000);

  it('drains a slow request on SIGINT (even when it arrives twice) before it stops its backends', async () => {
    const proc = runDemo(ANY_PORTS);
    const port = await listeningPort(proc);
    const adminPort = Number((await waitForOutput(proc, /^status on http:\/\/127\.0\.0\.1:(\d+)\//m))[1]);
    const slow = request(port, { path: '/slow' }); // the backend answers after 2 s
    while (!backendRows(await status(adminPort)).some((b) => b.active > 0)); // until a backend has it
    proc.child.kill('SIGINT');
    // Again once it is draining, as a terminal's Ctrl-C arrives a second time, relayed by tsx or npm.
    await waitForOutput(proc, /^shutting down/m);
    proc.child.kill('SIGINT');
    const reply = await slow;
    expect(reply.status).toBe(200);
    expect(reply.body.toString()).toMatch(/^www-\d answered GET \/slow\n/);
    expect(await proc.exit).toEqual({ code: 0, signal: null });
  });

  it('checks its backends: one stopped in the lab is marked down within seconds, with no request', async () => {
    const proc = runDemo(ANY_PORTS);
    await listeningPort(proc);
    const adminPort = Number((await waitForOutput(proc, /^status on http:\/\/127\.0\.0\.1:(\d+)\//m))[1]);
    const www2 = (await status(adminPort)).lab.find((b) => b.label === 'www-2')!.backend;
    expect((await request(adminPort, { method: 'POST', path: `/lab/${encodeURIComponent(www2)}/stop` })).status).toBe(200);
    await waitForOutput(proc, /marked down by health check/);
    expect(backendRows(await status(adminPort)).map((b) => b.state)).toContain('checking');
  }, 10_000);
});
