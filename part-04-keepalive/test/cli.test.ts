import http from 'node:http';
import net from 'node:net';
import { once } from 'node:events';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterEach, describe, expect, it } from 'vitest';
import { listen, listeningPort, request, run, shut, waitForOutput } from './helpers.ts';

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
    [['--listen', '127.0.0.1:0', '--backend', '127.0.0.1:80', '--strategy', 'fastest'], /--strategy: must be one of round-robin, random, least-connections, power-of-two, got "fastest"/],
    [['--listen', '127.0.0.1:0', '--backend', '127.0.0.1:80', '--connect-timeout', 'soon'], /--connect-timeout: must be a positive integer, got "soon"/],
    [['--listen', '127.0.0.1:0', '--backend', '127.0.0.1:80', '--response-timeout', '0'], /--response-timeout: must be a positive integer, got 0/],
    [['--config', 'x.json', '--keepalive-timeout', '5'], /--keepalive-timeout cannot be combined with --config/],
    [['--config', 'x.json', '--backend', '127.0.0.1:80'], /--backend cannot be combined with --config/],
    [['--config', '/nonexistent/lb.json'], /cannot read config \/nonexistent\/lb.json: ENOENT/],
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

  it('on SIGTERM (even twice) refuses new clients, finishes the request in flight, then exits 0', async () => {
    let held!: (res: http.ServerResponse) => void;
    const heldAtBackend = new Promise<http.ServerResponse>((resolve) => (held = resolve));
    const { server, port: backendPort } = await listen(http.createServer((_req, res) => held(res)));
    servers.push(server);
    const proc = run(['--listen', '127.0.0.1:0', '--backend', `127.0.0.1:${backendPort}`]);
    const port = await listeningPort(proc);

    const answer = request(port);
    const res = await heldAtBackend; // a request is in flight

    proc.child.kill('SIGTERM');
    await waitForOutput(proc, /shutting down/);
    proc.child.kill('SIGTERM'); // again, as a Ctrl-C relayed by npm or tsx arrives twice: it changes nothing
    const late = net.connect({ host: '127.0.0.1', port });
    const [err] = (await once(late, 'error')) as [NodeJS.ErrnoException];
    expect(err.code).toBe('ECONNREFUSED');

    res.end('goodbye');
    expect((await answer).body.toString()).toBe('goodbye');
    expect(await proc.exit).toEqual({ code: 0, signal: null });
  });

  const dir = mkdtempSync(join(tmpdir(), 'lb-config-'));
  const good = { listen: '127.0.0.1:0', backends: [{ address: '127.0.0.1:9001' }] };
  it.each([
    ['{ "listen": ', /not valid JSON: Unexpected end of JSON input at line 1, column 13$/m],
    ['{\n  "listen": "127.0.0.1:0"\n  "backends": []\n}', /not valid JSON: Expected ',' or '}' after property value at line 3, column 3$/m],
    ['{\n  "listen": "127.0.0.1:0",\n  "backends": [{ "address": tru }]\n}', /not valid JSON: Unexpected token ' ' at line 3, column 32$/m],
    [[1, 2], /^error: config .*: must be an object, got \[1,2\]/m],
    [{ ...good, stratgy: 'random' }, /config .*: stratgy: unknown key \(allowed here: listen, strategy, backends, upstreams, virtualHosts, healthCheck, connectTimeoutMs/],
    [{ ...good, responseTimeoutMs: 0 }, /responseTimeoutMs: must be a positive integer, got 0/],
    [{ ...good, upstreams: { default: { backends: [{ address: '127.0.0.1:1' }] } } }, /upstreams\.default: this name is taken/],
    [{ ...good, upstreams: { api: { backends: [] } } }, /upstreams\.api\.backends: must name at least one backend/],
    [{ ...good, virtualHosts: [{ serverNames: ['a.example'], upstream: 'api' }] }, /virtualHosts\[0\]\.upstream: must name an upstream \(default\), got "api"/],
    [{ ...good, virtualHosts: [{ serverNames: ['a b'], upstream: 'default' }] }, /virtualHosts\[0\]\.serverNames\[0\]: must be a host name/],
    [{ ...good, backendKeepAlive: { maxIdel: 3 } }, /backendKeepAlive\.maxIdel: unknown key/],
    [{ ...good, limits: { headerBytes: 'big' } }, /limits\.headerBytes: must be a positive integer, got "big"/],
    [{ ...good, strategy: 'fastest' }, /strategy: must be one of round-robin, random, least-connections, power-of-two, got "fastest"/],
    [{ ...good, backends: [] }, /backends: must name at least one backend/],
    [{ listen: '127.0.0.1:0' }, /backends: must be a list of backends, got nothing/],
    [{ ...good, listen: 8080 }, /listen: must be a "HOST:PORT" string, got 8080/],
    [{ ...good, backends: [{ address: 'nope' }] }, /backends\[0\]\.address: expected HOST:PORT, got "nope"/],
    [{ ...good, backends: [{ address: '127.0.0.1:1' }, { address: '127.0.0.1:2' }, { address: '127.0.0.1:3', weight: 'x' }] }, /backends\[2\]\.weight: must be a positive integer, got "x"/],
    [{ ...good, backends: [{ address: '127.0.0.1:1', wieght: 2 }] }, /backends\[0\]\.wieght: unknown key/],
    [{ ...good, backends: [{ address: '127.0.0.1:1', maxFails: -1 }] }, /backends\[0\]\.maxFails: must be a whole number, 0 or more, got -1/],
    [{ ...good, healthCheck: { intervalMs: 1000, timeoutMs: 500, fall: 3 } }, /healthCheck\.rise: is required/],
  ])('rejects config %j with exit code 2, naming the field', async (content, message) => {
    const file = join(dir, 'bad.json');
    writeFileSync(file, typeof content === 'string' ? content : JSON.stringify(content));
    const proc = run(['--config', file]);
    expect((await proc.exit).code).toBe(2);
    expect(proc.stderr()).toMatch(message);
    expect(proc.stdout()).toBe('');
  });

  it('starts from the example config shipped with the part (with --listen overriding its port)', async () => {
    const example = fileURLToPath(new URL('../example.json', import.meta.url));
    const proc = run(['--config', example, '--listen', '127.0.0.1:0']);
    await listeningPort(proc);
    proc.child.kill('SIGTERM');
    expect(await proc.exit).toEqual({ code: 0, signal: null });
  });
});
