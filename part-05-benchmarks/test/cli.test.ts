import http from 'node:http';
import net from 'node:net';
import { once } from 'node:events';
import { mkdtempSync, readdirSync, readFileSync, readlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterEach, describe, expect, it } from 'vitest';
import { listen, listeningPort, request, run, shut, waitForOutput } from './helpers.ts';

const servers: net.Server[] = [];
afterEach(async () => {
  await Promise.all(servers.splice(0).map(shut));
});

/** The proxy with its admin listener (and `extra` flags) in front of one backend that answers "ok". */
async function withAdmin(extra: string[], openFileLimit?: number) {
  const { server, port: backendPort } = await listen(http.createServer((_req, res) => res.end('ok')));
  servers.push(server);
  const proc = run(['--listen', '127.0.0.1:0', '--backend', `127.0.0.1:${backendPort}`, '--admin', '127.0.0.1:0', ...extra], openFileLimit);
  const port = await listeningPort(proc);
  const adminPort = Number((await waitForOutput(proc, /^status on http:\/\/127\.0\.0\.1:(\d+)\/$/m))[1]);
  return { proc, port, adminPort, backend: `127.0.0.1:${backendPort}` };
}

describe('command line', () => {
  it('--help prints the usage on stdout and exits 0', async () => {
    const proc = run(['--help']);
    expect(await proc.exit).toEqual({ code: 0, signal: null });
    expect(proc.stdout()).toMatch(/^usage: main\.ts --config FILE \[--listen HOST:PORT\] \[--workers N\]$/m);
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
    [['--listen', '127.0.0.1:0', '--backend', '127.0.0.1:80', '--workers', 'many'], /--workers: must be a whole number from 1 to 64, got "many"/],
    [['--config', 'x.json', '--backend', '127.0.0.1:80'], /--backend cannot be combined with --config/],
    [['--config', '/nonexistent/lb.json'], /cannot read config \/nonexistent\/lb.json: ENOENT/],
    [['--listen', '127.0.0.1:0', '--backend', '127.0.0.1:80', '--admin', 'nope'], /--admin: expected HOST:PORT, got "nope"/],
    [['--listen', '127.0.0.1:8080', '--backend', '127.0.0.1:80', '--admin', '127.0.0.1:8080'], /--admin: must differ from listen/],
    [['--listen', '127.0.0.1:0', '--backend', '127.0.0.1:80', '--access-log', ''], /--access-log: must be a file path or "-" for standard output/],
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
    // Nothing before the listening line; the pid to signal may follow it.
    expect(proc.stdout()).toMatch(new RegExp(`^listening on 127\\.0\\.0\\.1:${port}\n(pid \\d+: kill -HUP \\d+ reloads the configuration, kill -TERM \\d+ stops\n)?$`));

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
    [{ ...good, stratgy: 'random' }, /config .*: stratgy: unknown key \(allowed here: listen, workers, strategy, backends, upstreams, virtualHosts, healthCheck, connectTimeoutMs/],
    [{ ...good, responseTimeoutMs: 0 }, /responseTimeoutMs: must be a positive integer, got 0/],
    [{ ...good, accessLog: '' }, /accessLog: must be a file path or "-" for standard output, got ""/],
    [{ ...good, admin: 8081 }, /admin: must be a "HOST:PORT" string, got 8081/],
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
    [{ ...good, backends: [{ address: '127.0.0.1:1', name: '' }] }, /backends\[0\]\.name: must be a non-empty name of visible characters, no spaces \(like "www-1"\), got ""/],
    [{ ...good, backends: [{ address: '127.0.0.1:1', name: 'www 1' }] }, /backends\[0\]\.name: must be a non-empty name of visible characters, no spaces \(like "www-1"\), got "www 1"/],
    [{ ...good, upstreams: { api: { backends: [{ address: '127.0.0.1:1', name: 'api' }, { address: '127.0.0.1:2', name: 'api' }] } } }, /upstreams\.api\.backends\[1\]\.name: "api" is already the name of upstreams\.api\.backends\[0\]$/m],
    [{ ...good, healthCheck: { intervalMs: 1000, timeoutMs: 500, fall: 3 } }, /healthCheck\.rise: is required/],
    [{ ...good, workers: 65 }, /workers: must be a whole number from 1 to 64, got 65/],
    [{ ...good, clientMaxBodySize: -1 }, /clientMaxBodySize: must be a whole number, 0 or more, got -1/],
  ])('rejects config %j with exit code 2, naming the field', async (content, message) => {
    const file = join(dir, 'bad.json');
    writeFileSync(file, typeof content === 'string' ? content : JSON.stringify(content));
    const proc = run(['--config', file]);
    expect((await proc.exit).code).toBe(2);
    expect(proc.stderr()).toMatch(message);
    expect(proc.stdout()).toBe('');
  });

  it('refuses to start with an access log it cannot open, from the flag or the file: one line, exit 2', async () => {
    const log = '/nonexistent/dir/x.log';
    const file = join(dir, 'bad-log.json');
    writeFileSync(file, JSON.stringify({ ...good, accessLog: log }));
    for (const [args, field] of [[['--listen', '127.0.0.1:0', '--backend', '127.0.0.1:80', '--access-log', log], '--access-log'], [['--config', file], `config ${file}: accessLog`]] as const) {
      const proc = run([...args]);
      expect((await proc.exit).code).toBe(2);
      expect(proc.stderr()).toBe(`error: ${field}: cannot open ${log} for appending: ENOENT: no such file or directory\n`);
      expect(proc.stdout()).toBe('');
    }
  });

  it('starts from the example config shipped with the part (with --listen overriding its port)', async () => {
    const example = fileURLToPath(new URL('../example.json', import.meta.url));
    const proc = run(['--config', example, '--listen', '127.0.0.1:0']);
    await listeningPort(proc);
    proc.child.kill('SIGTERM');
    expect(await proc.exit).toEqual({ code: 0, signal: null });
  });

  it('--workers 2 forks two workers that share one port, and SIGTERM stops them all', async () => {
    const { server, port: backendPort } = await listen(http.createServer((_req, res) => res.end(`pid ${process.pid}`)));
    servers.push(server);
    const proc = run(['--listen', '127.0.0.1:0', '--backend', `127.0.0.1:${backendPort}`, '--workers', '2']);
    const port = await listeningPort(proc);

    const replies = await Promise.all(Array.from({ length: 20 }, () => request(port)));
    expect(replies.every((r) => r.status === 200)).toBe(true);

    proc.child.kill('SIGTERM');
    expect(await proc.exit).toEqual({ code: 0, signal: null });
    expect(proc.stderr().match(/shutting down/g)).toHaveLength(1); // the primary speaks for the workers
  });

  it.each([
    ['each worker accepts from the listening socket itself, and the kernel picks one (as nginx\'s workers do)', {}, 'workers'],
    ['NODE_CLUSTER_SCHED_POLICY=rr gives Node\'s default back: the primary accepts and hands each connection on', { NODE_CLUSTER_SCHED_POLICY: 'rr' }, 'primary'],
  ] as const)('--workers 2: %s', async (_name, env, holder) => {
    const { server, port: backendPort } = await listen(http.createServer((_req, res) => res.end('ok')));
    servers.push(server);
    const proc = run(['--listen', '127.0.0.1:0', '--backend', `127.0.0.1:${backendPort}`, '--workers', '2'], undefined, env);
    const port = await listeningPort(proc);
    const primary = Number((await waitForOutput(proc, /^pid (\d+):/m))[1]);
    const workers = readFileSync(`/proc/${primary}/task/${primary}/children`, 'utf8').trim().split(/\s+/).map(Number);
    expect(workers).toHaveLength(2);
    const holders = listenerHolders(port, [primary, ...workers]);
    if (holder === 'workers') expect(holders).toEqual(expect.arrayContaining(workers));
    else expect(holders).toEqual([primary]);
    proc.child.kill('SIGTERM');
    expect(await proc.exit).toEqual({ code: 0, signal: null });
  });

  it('--workers 2: Ctrl-C (SIGINT to every process of the group) says "shutting down" once and exits 0', async () => {
    const { server, port: backendPort } = await listen(http.createServer((_req, res) => res.end('ok')));
    servers.push(server);
    const proc = run(['--listen', '127.0.0.1:0', '--backend', `127.0.0.1:${backendPort}`, '--workers', '2']);
    await listeningPort(proc);
    const primary = Number((await waitForOutput(proc, /^pid (\d+):/m))[1]);
    const workers = readFileSync(`/proc/${primary}/task/${primary}/children`, 'utf8').trim().split(/\s+/).map(Number);
    expect(workers).toHaveLength(2);
    for (const pid of [primary, ...workers]) process.kill(pid, 'SIGINT'); // as a terminal does
    expect(await proc.exit).toEqual({ code: 0, signal: null });
    expect(proc.stderr().match(/shutting down/g)).toHaveLength(1);
  });

  it.each([1, 2])('a busy port stops the whole process with one error line and exit 2 (--workers %i)', async (workers) => {
    const { server, port: busy } = await listen(net.createServer());
    servers.push(server);
    const proc = run(['--listen', `127.0.0.1:${busy}`, '--backend', '127.0.0.1:80', '--workers', String(workers)]);
    expect(await proc.exit).toEqual({ code: 2, signal: null });
    expect(proc.stderr().match(/^error: .*EADDRINUSE.*$/gm)).toHaveLength(1);
    expect(proc.stderr()).not.toMatch(/starting another/);
    expect(proc.stdout()).toBe('');
  });

  it('a worker that dies after it listened is replaced, later each time it keeps dying', async () => {
    const { server, port: backendPort } = await listen(http.createServer((_req, res) => res.end('ok')));
    servers.push(server);
    const proc = run(['--listen', '127.0.0.1:0', '--backend', `127.0.0.1:${backendPort}`, '--workers', '2']);
    const port = await listeningPort(proc);
    const primary = Number((await waitForOutput(proc, /^pid (\d+):/m))[1]);
    const workerPids = () => readFileSync(`/proc/${primary}/task/${primary}/children`, 'utf8').trim().split(/\s+/).map(Number);

    expect(workerPids()).toHaveLength(2);
    const delays: number[] = [];
    for (let death = 1; death <= 2; death++) {
      const [victim] = workerPids();
      process.kill(victim!, 'SIGKILL');
      const line = await waitForOutput(proc, new RegExp(`^worker ${victim} died \\(SIGKILL\\); starting another in (\\d+) ms$`, 'm'));
      delays.push(Number(line[1]));
      await waitForOutput(proc, new RegExp(`(worker \\d+ listening, in place of the one that died[\\s\\S]*){${death}}`));
    }
    expect(delays[1]).toBeGreaterThan(delays[0]!);
    expect((await request(port)).status).toBe(200);
    proc.child.kill('SIGTERM');
    expect(await proc.exit).toEqual({ code: 0, signal: null });
  });

  it('--admin serves the status of the whole proxy, all workers added up, and says where after the listening line', async () => {
    const { proc, port, adminPort } = await withAdmin(['--workers', '2']);
    expect(proc.stdout().indexOf('listening on')).toBeLessThan(proc.stdout().indexOf('status on'));

    await Promise.all(Array.from({ length: 20 }, () => request(port)));
    const status = JSON.parse((await request(adminPort, { path: '/status.json' })).body.toString());
    expect(status.workers).toBe(2);
    expect(status.requests.total).toBe(20);
    expect(status.upstreams[0].backends[0].requests).toBe(20);
    const metrics = (await request(adminPort, { path: '/metrics' })).body.toString();
    expect(metrics).toContain('lb_workers 2\n');
    expect(metrics).toContain('lb_requests_total 20\n');
    // One series per process: the primary, and each worker by its place.
    for (const worker of ['primary', '1', '2']) {
      expect(metrics).toMatch(new RegExp(`^process_open_fds\\{worker="${worker}"\\} [1-9]\\d*$`, 'm'));
      expect(metrics).toMatch(new RegExp(`^process_cpu_seconds_total\\{worker="${worker}"\\} \\d`, 'm'));
    }
    expect(status.processes.map((p: { worker: string }) => p.worker)).toEqual(['primary', '1', '2']);

    proc.child.kill('SIGTERM');
    expect(await proc.exit).toEqual({ code: 0, signal: null });
  });

  it('/metrics has the process_* series of the Prometheus client, read from the process itself', async () => {
    const before = Date.now() / 1000;
    const { proc, adminPort } = await withAdmin([], 512);
    const reply = await request(adminPort, { path: '/metrics' });
    expect(reply.headers['content-type']).toBe('text/plain; version=0.0.4; charset=utf-8');
    const value = (name: string) => Number(new RegExp(`^${name} (\\S+)$`, 'm').exec(reply.body.toString())?.[1]);
    expect(value('process_max_fds')).toBe(512); // the ulimit -n it was started under
    expect(value('process_open_fds')).toBeGreaterThan(2);
    expect(value('process_open_fds')).toBeLessThan(512);
    expect(value('process_resident_memory_bytes')).toBeGreaterThan(1e6);
    expect(value('process_cpu_seconds_total')).toBeGreaterThan(0);
    expect(value('process_start_time_seconds')).toBeGreaterThan(before - 1);
    expect(value('process_start_time_seconds')).toBeLessThan(Date.now() / 1000);
    proc.child.kill('SIGTERM');
    expect(await proc.exit).toEqual({ code: 0, signal: null });
  });

  it('counters never go down when a worker dies: the primary keeps what it had counted', async () => {
    const { proc, port, adminPort, backend } = await withAdmin(['--workers', '2']);
    const primary = Number((await waitForOutput(proc, /^pid (\d+):/m))[1]);
    const counters = async () => {
      const text = (await request(adminPort, { path: '/metrics' })).body.toString();
      const value = (series: string) => Number(text.split('\n').find((line) => line.startsWith(`${series} `))?.slice(series.length + 1));
      return [value('lb_requests_total'), value('lb_connections_accepted_total'), value(`lb_backend_requests_total{upstream="default",backend="${backend}"}`)];
    };

    await Promise.all(Array.from({ length: 10 }, () => request(port)));
    expect(await counters()).toEqual([10, 10, 10]);
    const [victim, sleeper] = readFileSync(`/proc/${primary}/task/${primary}/children`, 'utf8').trim().split(/\s+/).map(Number);
    // A worker too slow to answer (stopped here) counts with the last numbers it gave.
    process.kill(sleeper!, 'SIGSTOP');
    expect(await counters()).toEqual([10, 10, 10]);
    process.kill(sleeper!, 'SIGCONT');
    process.kill(victim!, 'SIGKILL');
    await waitForOutput(proc, new RegExp(`^worker ${victim} died`, 'm'));
    expect(await counters()).toEqual([10, 10, 10]);
    await waitForOutput(proc, /in place of the one that died/);
    await Promise.all(Array.from({ length: 5 }, () => request(port)));
    expect(await counters()).toEqual([15, 15, 15]);

    proc.child.kill('SIGTERM');
    expect(await proc.exit).toEqual({ code: 0, signal: null });
    // Four Node.js processes start in turn here (the primary, two workers, a replacement), each
    // compiling the TypeScript: on a busy machine that alone took more than the usual 30 s.
  }, 120_000);

  it('SIGHUP reloads the config for new connections; the request in flight finishes on the old one; a bad file is refused', async () => {
    let held!: (res: http.ServerResponse) => void;
    const heldAtOld = new Promise<http.ServerResponse>((resolve) => (held = resolve));
    const old = await listen(http.createServer((req, res) => (req.url === '/hold' ? held(res) : res.end('old'))));
    const fresh = await listen(http.createServer((_req, res) => res.end('new')));
    servers.push(old.server, fresh.server);
    const file = join(dir, 'reload.json');
    writeFileSync(file, JSON.stringify({ listen: '127.0.0.1:0', backends: [{ address: `127.0.0.1:${old.port}` }] }));
    const proc = run(['--config', file]);
    const port = await listeningPort(proc);

    const inFlight = request(port, { path: '/hold' });
    const res = await heldAtOld;
    writeFileSync(file, JSON.stringify({ listen: '127.0.0.1:0', backends: [{ address: `127.0.0.1:${fresh.port}` }] }));
    proc.child.kill('SIGHUP');
    await waitForOutput(proc, /reload: new configuration in force/);

    expect((await request(port)).body.toString()).toBe('new');
    res.end('old, finished');
    expect((await inFlight).body.toString()).toBe('old, finished');

    writeFileSync(file, '{ "listen": "127.0.0.1:0", "backends": [{ "address": "nope" }] }');
    proc.child.kill('SIGHUP');
    await waitForOutput(proc, /reload rejected, keeping the old configuration: config .*backends\[0\]\.address: expected HOST:PORT/);
    expect((await request(port)).body.toString()).toBe('new');
    // An access log that cannot be opened is a bad config like any other.
    writeFileSync(file, JSON.stringify({ listen: '127.0.0.1:0', backends: [{ address: `127.0.0.1:${old.port}` }], accessLog: '/nonexistent/dir/x.log' }));
    proc.child.kill('SIGHUP');
    await waitForOutput(proc, /reload rejected, keeping the old configuration: config .*accessLog: cannot open \/nonexistent\/dir\/x\.log for appending: ENOENT/);
    expect((await request(port)).body.toString()).toBe('new');

    proc.child.kill('SIGTERM');
    expect(await proc.exit).toEqual({ code: 0, signal: null });
  });
});

/** Which of `pids` hold the socket listening on 127.0.0.1:`port` (Linux: /proc/net/tcp, then each /proc/PID/fd). */
function listenerHolders(port: number, pids: number[]): number[] {
  const local = `0100007F:${port.toString(16).toUpperCase().padStart(4, '0')}`;
  const fields = readFileSync('/proc/net/tcp', 'utf8')
    .split('\n')
    .map((line) => line.trim().split(/\s+/))
    .find((f) => f[1] === local && f[3] === '0A'); // 0A: LISTEN
  if (!fields) throw new Error(`nothing listens on 127.0.0.1:${port}`);
  const socket = `socket:[${fields[9]}]`;
  const holds = (pid: number) => readdirSync(`/proc/${pid}/fd`).some((fd) => {
    try {
      return readlinkSync(`/proc/${pid}/fd/${fd}`) === socket;
    } catch {
      return false; // closed while we looked
    }
  });
  return pids.filter(holds);
}
