// Watching it work: /status.json, /metrics and the access log, over real sockets.
import http from 'node:http';
import { Writable } from 'node:stream';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { useFixture } from './fixture.ts';
import { connect, namedBackend, raw, request } from './helpers.ts';
import { startAdmin, type Admin } from '../src/observe/admin.ts';
import { AccessLog, MAX_QUEUED } from '../src/observe/access-log.ts';
import { mergeStatuses, type ProxyStatus } from '../src/observe/status.ts';

const fx = useFixture();
const admins: Admin[] = [];
afterEach(async () => {
  for (const admin of admins.splice(0)) await admin.close();
});

async function adminFor(status: () => ProxyStatus): Promise<number> {
  const admin = await startAdmin({ host: '127.0.0.1', port: 0 }, async () => status());
  admins.push(admin);
  return admin.address.port;
}

async function statusJson(adminPort: number): Promise<ProxyStatus> {
  const reply = await request(adminPort, { path: '/status.json' });
  expect(reply.status).toBe(200);
  expect(reply.headers['content-type']).toBe('application/json');
  return JSON.parse(reply.body.toString()) as ProxyStatus;
}

describe('status', () => {
  it('counts requests, responses and latency per backend, and serves them as JSON and Prometheus text on the admin port only', async () => {
    const a = await fx.backend(namedBackend('a'));
    const b = await fx.backend(namedBackend('b', (req, res) => res.writeHead(req.url === '/missing' ? 404 : 200).end('b')));
    const { port, proxy } = await fx.proxy({ backends: [{ address: a }, { address: b }] });
    const adminPort = await adminFor(() => proxy.status());

    // Round-robin: a, b, a, b, a. So /missing goes to b, which answers it 404.
    for (const path of ['/1', '/missing', '/3', '/4']) await request(port, { path });
    // The public listener never serves the admin paths: this goes to a backend like any request.
    const publicReply = await request(port, { path: '/status.json' });
    expect(publicReply.body.toString()).toBe('a GET /status.json');

    const status = await statusJson(adminPort);
    expect(status.requests.total).toBe(5);
    expect(status.workers).toBe(1);
    expect(status.generation).toBe(1);
    expect(status.connections.accepted).toBe(5);
    expect(status.connections.handled).toBe(5);
    const [upstream] = status.upstreams;
    expect(upstream!.name).toBe('default');
    expect(upstream!.strategy).toBe('round-robin');
    const byName = new Map(upstream!.backends.map((backend) => [backend.address, backend]));
    expect(byName.get(a)!.requests + byName.get(b)!.requests).toBe(5);
    expect(byName.get(b)!.responses[3]).toBe(1); // the 404
    expect(status.requests.responses).toEqual([0, 4, 0, 1, 0]);
    for (const backend of byName.values()) {
      expect(backend.state).toBe('up');
      expect(backend.failures).toBe(0);
      expect(backend.histogram.count).toBe(backend.requests);
      expect(backend.recentMs).toHaveLength(backend.requests);
      expect(backend.p50Ms).toBeGreaterThan(0);
      expect(backend.p99Ms).toBeGreaterThanOrEqual(backend.p50Ms!);
    }

    const metrics = await request(adminPort, { path: '/metrics' });
    expect(metrics.headers['content-type']).toBe('text/plain; version=0.0.4; charset=utf-8');
    const text = metrics.body.toString();
    expect(text).toContain('lb_requests_total 5\n');
    expect(text).toContain(`lb_backend_requests_total{upstream="default",backend="${b}"} ${byName.get(b)!.requests}\n`);
    expect(text).toContain(`lb_backend_responses_total{upstream="default",backend="${b}",class="4xx"} 1\n`);
    expect(text).toContain(`lb_backend_response_seconds_count{upstream="default",backend="${a}"} ${byName.get(a)!.requests}\n`);
    expect(text).toContain(`lb_backend_response_seconds_bucket{upstream="default",backend="${a}",le="+Inf"} ${byName.get(a)!.requests}\n`);
    checkExposition(text);
  });

  it('shows a backend taken out, with the reason and since when', async () => {
    const a = await fx.backend(namedBackend('a'));
    const b = await fx.backend(namedBackend('b'));
    const { port, proxy } = await fx.proxy({ backends: [{ address: a }, { address: b }] });
    const adminPort = await adminFor(() => proxy.status());
    await fx.stop(b);
    const before = Date.now();

    for (let i = 0; i < 2; i++) expect((await request(port)).status).toBe(200); // retried on a

    const down = (await statusJson(adminPort)).upstreams[0]!.backends.find((backend) => backend.address === b)!;
    expect(down.state).toBe('down');
    expect(down.reason).toMatch(/1 failure\(s\) within 10000 ms \(last: connect ECONNREFUSED/);
    expect(down.since).toBeGreaterThanOrEqual(before);
    expect(down.failures).toBe(1);
    const metrics = (await request(adminPort, { path: '/metrics' })).body.toString();
    expect(metrics).toContain(`lb_backend_up{upstream="default",backend="${b}"} 0\n`);
    expect(metrics).toContain(`lb_backend_state{upstream="default",backend="${b}",state="down"} 1\n`);
  });

  it('tells connections reading, writing and waiting apart, as stub_status does', async () => {
    let arrived!: (res: http.ServerResponse) => void;
    const held = new Promise<http.ServerResponse>((resolve) => (arrived = resolve));
    const a = await fx.backend(namedBackend('a', (req, res) => (req.url === '/hold' ? arrived(res) : res.end('a'))));
    const { port, proxy } = await fx.proxy({ backends: [{ address: a }] });
    const adminPort = await adminFor(() => proxy.status());
    // waiting: a keep-alive connection between requests
    const agent = fx.agent(new http.Agent({ keepAlive: true, maxSockets: 1 }));
    await request(port, { agent });
    // writing: a request the backend is still answering
    const slow = request(port, { path: '/hold' });
    const res = await held;
    // reading: a request head that has begun and is not complete
    const partial = await connect(port);
    partial.write('GET / HTTP/1.1\r\nHo');
    let status = await statusJson(adminPort);
    while (status.connections.reading === 0) status = await statusJson(adminPort); // until the proxy has read those bytes
    expect(status.connections).toMatchObject({ active: 3, waiting: 1, writing: 1, reading: 1 });
    res.end('done');
    await slow;
    partial.destroy();
  });

  it('shows a backend\'s configured name beside its address, and never sends the name as Host', async () => {
    const a = await fx.backend(namedBackend('a', (req, res) => res.end(`host ${req.headers.host}`)));
    const b = await fx.backend(namedBackend('b'));
    const { port, proxy } = await fx.proxy({ backends: [{ address: a, name: 'www-1' }, { address: b }] }); // round-robin: a first
    const adminPort = await adminFor(() => proxy.status());
    // HTTP/1.0 allows no Host; the proxy sends one to the backend: its address, not its name.
    expect(await raw(port, 'GET / HTTP/1.0\r\n\r\n')).toMatch(new RegExp(`\r\n\r\nhost ${a.replace(/\./g, '\\.')}$`));

    const [named, unnamed] = (await statusJson(adminPort)).upstreams[0]!.backends;
    expect(named).toMatchObject({ address: a, name: 'www-1', requests: 1 });
    expect(unnamed!.address).toBe(b);
    expect(unnamed).not.toHaveProperty('name');
    const metrics = (await request(adminPort, { path: '/metrics' })).body.toString();
    expect(metrics).toContain(`lb_backend_requests_total{upstream="default",backend="${a}",name="www-1"} 1\n`);
    expect(metrics).toContain(`lb_backend_requests_total{upstream="default",backend="${b}"} 0\n`);
    checkExposition(metrics);
  });

  it('adds up every worker\'s numbers and shows the worst health state with its reason', () => {
    const part = (requests: number, state: 'up' | 'down'): ProxyStatus => ({
      uptimeSeconds: 3, workers: 1, generation: 1,
      connections: { accepted: requests, handled: requests, active: 1, reading: 0, writing: 1, waiting: 0 },
      requests: { total: requests, perSecond: requests, responses: [0, requests, 0, 0, 0] },
      accessLogDropped: 0,
      upstreams: [{ name: 'default', strategy: 'round-robin', backends: [{
        address: 'x', state, reason: state, since: 1, active: 1, requests, failures: state === 'down' ? 1 : 0,
        responses: [0, requests, 0, 0, 0], idleConnections: 2, recentMs: [requests], p50Ms: requests, p99Ms: requests,
        histogram: { buckets: [requests], sum: requests, count: requests },
      }] }],
    });
    const merged = mergeStatuses([part(10, 'up'), part(30, 'down')]);
    expect(merged.workers).toBe(2);
    expect(merged.requests.total).toBe(40);
    expect(merged.connections.active).toBe(2);
    const x = merged.upstreams[0]!.backends[0]!;
    expect(x).toMatchObject({ state: 'down', reason: 'down', requests: 40, failures: 1, idleConnections: 4, recentMs: [10, 30] });
    expect(x.histogram).toEqual({ buckets: [40], sum: 40, count: 40 });
    expect(x.p99Ms).toBe(30);
  });
});

describe('access log', () => {
  it('writes one combined line per request with the upstream address, status and times', async () => {
    const file = join(mkdtempSync(join(tmpdir(), 'lb-access-')), 'access.log');
    const a = await fx.backend(namedBackend('a'));
    const { port, proxy } = await fx.proxy({ backends: [{ address: a }], accessLog: file });
    await request(port, { path: '/hello?x=1', headers: { 'user-agent': 'test "agent"', referer: 'http://example/' } });
    expect(await raw(port, 'GET /bad path HTTP/1.1\r\nHost: x\r\n\r\n')).toMatch(/^HTTP\/1\.1 400 /); // refused by the parser: no upstream
    expect(await proxy.close(2000)).toBe(0); // closing flushes the log

    const lines = readFileSync(file, 'utf8').split('\n');
    expect(lines).toHaveLength(3);
    expect(lines[0]).toMatch(
      new RegExp(`^127\\.0\\.0\\.1 - - \\[\\d{2}/[A-Z][a-z]{2}/\\d{4}:\\d{2}:\\d{2}:\\d{2} [+-]\\d{4}\\] "GET /hello\\?x=1 HTTP/1\\.1" 200 16 "http://example/" "test \\\\x22agent\\\\x22" ${a.replace(/\./g, '\\.')} 200 \\d+\\.\\d{3} \\d+\\.\\d{3} --$`),
    );
    expect(lines[1]).toMatch(/^127\.0\.0\.1 - - \[.+\] "-" 400 \d+ "-" "-" - - - 0\.000 PR$/);
    expect(lines[2]).toBe('');
  });

  it('drops lines instead of growing without bound when the disk or pipe does not keep up', () => {
    const stuck = new Writable({ write: () => {} }); // never calls back: a disk that hangs
    const log = new AccessLog(stuck, () => {});
    const line = { clientIp: '127.0.0.1', start: 0, requestLine: 'GET / HTTP/1.1', status: 200, bodyBytes: 1, referer: undefined, userAgent: undefined, upstreams: [], requestSeconds: 0, termination: '--' };
    for (let i = 0; i < 20_000; i++) log.write(line);
    expect(log.dropped).toBeGreaterThan(0);
    expect(stuck.writableLength).toBeLessThanOrEqual(MAX_QUEUED + 200);
  });
});

/** Every sample belongs to a metric declared with # TYPE, counters end in _total, values are numbers. */
function checkExposition(text: string): void {
  const types = new Map<string, string>();
  for (const line of text.trimEnd().split('\n')) {
    const type = /^# TYPE (\w+) (counter|gauge|histogram)$/.exec(line);
    if (type) {
      types.set(type[1]!, type[2]!);
      if (type[2] === 'counter') expect(type[1]).toMatch(/_total$/);
      continue;
    }
    if (line.startsWith('# HELP ')) continue;
    const sample = /^(\w+?)(_bucket|_sum|_count)?(\{[^}]*\})? (-?[\d.e+]+)$/.exec(line);
    expect(sample, line).not.toBeNull();
    const [, name, suffix] = sample!;
    expect(types.get(suffix && types.get(name!) === 'histogram' ? name! : name! + (suffix ?? ''))).toBeDefined();
  }
}
