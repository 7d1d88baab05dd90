import net from 'node:net';
import { once } from 'node:events';
import { spawn } from 'node:child_process';
import { basename } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterEach, describe, expect, it } from 'vitest';
import { listen, listeningPort, request, shut, type RunningProcess } from './helpers.ts';

const DEMO = fileURLToPath(new URL('../src/demo.ts', import.meta.url));
const PART = basename(fileURLToPath(new URL('..', import.meta.url))); // the folder's name, as a user types it
const demos: RunningProcess[] = [];

/** Runs src/demo.ts (what `npm start` runs) in its own process. */
function runDemo(args: string[]): RunningProcess {
  const child = spawn(process.execPath, ['--import', 'tsx', DEMO, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  let err = '';
  child.stdout.on('data', (chunk: Buffer) => (out += chunk));
  child.stderr.on('data', (chunk: Buffer) => (err += chunk));
  const exit = once(child, 'close').then(([code, signal]) => ({ code: code as number | null, signal: signal as NodeJS.Signals | null }));
  const proc = { child, stdout: () => out, stderr: () => err, exit };
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
    ['--backend', '127.0.0.1:9'],
  ])('%s, which only main.ts can honour, gets one line that points to main.ts', async (flag, value) => {
    const message = await expectOneLineError(runDemo([flag, value]));
    expect(message).toContain(`${flag} is not for the demo`);
    expect(message).toContain(`npx tsx ${PART}/src/main.ts `);
  });

  it('a busy port suggests another port, not the one that failed', async () => {
    const { server, port } = await listen(net.createServer());
    servers.push(server);
    const message = await expectOneLineError(runDemo(['--listen', `127.0.0.1:${port}`]));
    expect(message).toContain(`cannot listen on 127.0.0.1:${port}: something else is listening there`);
    expect(message).toContain(`npm start -- --listen 127.0.0.1:${port + 10}`);
  });

  it('takes --listen, forwards to its backend and exits 0 on SIGINT', async () => {
    const proc = runDemo(['--listen', '127.0.0.1:0']);
    const port = await listeningPort(proc);
    expect((await request(port)).body.toString()).toBe('hello from the demo backend (GET /)\n');
    proc.child.kill('SIGINT');
    expect(await proc.exit).toEqual({ code: 0, signal: null });
  });
});
