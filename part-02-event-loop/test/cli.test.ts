import http from 'node:http';
import net from 'node:net';
import { once } from 'node:events';
import { afterEach, describe, expect, it } from 'vitest';
import { connect, listen, listeningPort, readAll, request, run, shut, waitForOutput } from './helpers.ts';

const servers: net.Server[] = [];
afterEach(async () => {
  await Promise.all(servers.splice(0).map(shut));
});

describe('command line', () => {
  it('--help prints the usage on stdout and exits 0', async () => {
    const proc = run(['--help']);
    expect(await proc.exit).toEqual({ code: 0, signal: null });
    expect(proc.stdout()).toMatch(/^usage: main\.ts /);
  });

  it.each([
    [[], /--listen is required/],
    [['--listen', '127.0.0.1:0'], /--backend is required/],
    [['--listen', 'localhost', '--backend', '127.0.0.1:80'], /--listen: expected HOST:PORT, got "localhost"/],
    [['--listen', '127.0.0.1:0', '--backend', '127.0.0.1:99999'], /--backend: port must be 0-65535/],
    [['--listen', '127.0.0.1:0', '--backend', '127.0.0.1:80', '--bogus'], /Unknown option '--bogus'/],
  ])('rejects %j with exit code 2 and a clear message', async (args, message) => {
    const proc = run(args);
    const { code } = await proc.exit;
    expect(code).toBe(2);
    expect(proc.stderr()).toMatch(message);
    expect(proc.stdout()).toBe('');
  });

  it('prints the real port, forwards, and exits 0 on SIGTERM', async () => {
    const { server, port: backendPort } = await listen(http.createServer((_req, res) => res.end('via proxy')));
    servers.push(server);
    const proc = run(['--listen', '127.0.0.1:0', '--backend', `127.0.0.1:${backendPort}`]);
    const port = await listeningPort(proc);
    expect(proc.stdout()).toBe(`listening on 127.0.0.1:${port}\n`);

    expect((await request(port)).body.toString()).toBe('via proxy');

    proc.child.kill('SIGTERM');
    expect(await proc.exit).toEqual({ code: 0, signal: null });
  });

  it('on SIGTERM (even twice) refuses new clients, finishes the open exchange, then exits 0', async () => {
    let held!: (socket: net.Socket) => void;
    const heldAtBackend = new Promise<net.Socket>((resolve) => (held = resolve));
    const { server, port: backendPort } = await listen(net.createServer((socket) => socket.once('data', () => held(socket))));
    servers.push(server);
    const proc = run(['--listen', '127.0.0.1:0', '--backend', `127.0.0.1:${backendPort}`]);
    const port = await listeningPort(proc);

    const client = await connect(port);
    client.write('hello');
    const backendSide = await heldAtBackend; // an exchange is in flight

    proc.child.kill('SIGTERM');
    await waitForOutput(proc, /shutting down/);
    proc.child.kill('SIGTERM'); // again, as a Ctrl-C relayed by npm or tsx arrives twice: it changes nothing
    const late = net.connect({ host: '127.0.0.1', port });
    const [err] = (await once(late, 'error')) as [NodeJS.ErrnoException];
    expect(err.code).toBe('ECONNREFUSED');

    backendSide.end('goodbye');
    client.end();
    expect((await readAll(client)).toString()).toBe('goodbye');
    expect(await proc.exit).toEqual({ code: 0, signal: null });
  });
});
