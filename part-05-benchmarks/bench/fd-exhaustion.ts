// Running out of file descriptors: start a part (or nginx) under a low `ulimit -n`, hit it with
// more keep-alive connections than it can hold, and count what every request got.
//   npx tsx part-05-benchmarks/bench/fd-exhaustion.ts [--part 2|3|4|5|nginx] [--limit 128] [--connections 400] [--seconds 5]
import http from 'node:http';
import { parseArgs } from 'node:util';
import { fileURLToPath } from 'node:url';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { start, which } from './processes.ts';

const usage = 'usage: fd-exhaustion.ts [--part 2|3|4|5|nginx] [--limit FDS] [--connections N] [--seconds S]';
let values;
try {
  ({ values } = parseArgs({
    options: {
      part: { type: 'string', default: '5' },
      limit: { type: 'string', default: '128' },
      connections: { type: 'string', default: '400' },
      seconds: { type: 'string', default: '5' },
      help: { type: 'boolean' },
    },
  }));
} catch (err) {
  console.error(`error: ${(err as Error).message}\n${usage}`);
  process.exit(2);
}
if (values.help) {
  console.log(usage);
  process.exit(0);
}
const [limit, connections, seconds] = [values.limit, values.connections, values.seconds].map(Number) as [number, number, number];
const PARTS: Record<string, string> = { '2': 'part-02-event-loop', '3': 'part-03-multi-backend', '4': 'part-04-keepalive', '5': 'part-05-benchmarks' };
if (!(values.part in PARTS) && values.part !== 'nginx') {
  console.error(`error: --part must be 2, 3, 4, 5 or nginx, got "${values.part}"\n${usage}`);
  process.exit(2);
}

const backendScript = fileURLToPath(new URL('./backend.ts', import.meta.url));
const backends = await Promise.all([0, 1].map(() => start(process.execPath, ['--import', 'tsx', backendScript])));
const upstream = backends.map((b) => `127.0.0.1:${b.port}`);

let command: string;
if (values.part === 'nginx') {
  const nginx = which('nginx') ?? which('/usr/sbin/nginx');
  if (!nginx) {
    console.error('nginx is not installed');
    process.exit(1);
  }
  const dir = mkdtempSync(join(tmpdir(), 'fd-nginx-'));
  // nginx cannot report a port it picked; take a random high one.
  const port = 20000 + Math.floor(Math.random() * 20000);
  writeFileSync(
    join(dir, 'nginx.conf'),
    `daemon off; worker_processes 1; pid ${dir}/pid; error_log ${dir}/error.log;
events { worker_connections 1024; }
http { access_log off; upstream b { ${upstream.map((a) => `server ${a};`).join(' ')} keepalive 32; }
  server { listen 127.0.0.1:${port}; location / { proxy_pass http://b; proxy_http_version 1.1; proxy_set_header Connection ""; } } }`,
  );
  command = `ulimit -n ${limit}; ${nginx} -p ${dir} -c ${dir}/nginx.conf & sleep 0.5; echo "listening on 127.0.0.1:${port}"; wait`;
} else {
  const main = fileURLToPath(new URL(`../../${PARTS[values.part]}/src/main.ts`, import.meta.url));
  const backendFlags = values.part === '2' ? ['--backend', upstream[0]!] : upstream.flatMap((a) => ['--backend', a]);
  command = `ulimit -n ${limit}; exec ${process.execPath} --import tsx ${main} --listen 127.0.0.1:0 ${backendFlags.join(' ')}`;
}

const proxy = await start('bash', ['-c', command]);
let stderr = '';
proxy.child!.stderr!.on('data', (chunk: Buffer) => (stderr += chunk));

// Each connection sends requests one after another until time is up; a failed one reconnects.
const tally = { ok: 0, non2xx: 0, errors: 0 };
const agent = new http.Agent({ keepAlive: true, maxSockets: connections });
const until = Date.now() + seconds * 1000;
const once = () =>
  new Promise<void>((resolve) => {
    const req = http.get({ host: '127.0.0.1', port: proxy.port, path: '/', agent }, (res) => {
      res.resume();
      res.on('end', () => {
        if (res.statusCode! >= 200 && res.statusCode! < 300) tally.ok++;
        else tally.non2xx++;
        resolve();
      });
    });
    req.setTimeout(10_000, () => req.destroy(new Error('timed out')));
    req.on('error', () => {
      tally.errors++;
      resolve();
    });
  });
await Promise.all(
  Array.from({ length: connections }, async () => {
    while (Date.now() < until) await once();
  }),
);
agent.destroy();

// And afterwards: does it serve normally again, by itself? (Its clients' closes take a moment to arrive.)
const getStatus = () =>
  new Promise<number>((resolve) => {
    http.get({ host: '127.0.0.1', port: proxy.port, agent: false }, (res) => resolve(res.statusCode!)).on('error', () => resolve(0));
  });
const loadEnded = Date.now();
let after = 0;
while (after !== 200 && Date.now() - loadEnded < 5000) {
  after = await getStatus();
  if (after !== 200) await new Promise((resolve) => setTimeout(resolve, 100));
}
const recoveredMs = Date.now() - loadEnded;
const total = tally.ok + tally.non2xx + tally.errors;
const pct = (n: number) => `${((100 * n) / Math.max(total, 1)).toFixed(1)}%`;
console.log(`${values.part === 'nginx' ? 'nginx' : `part ${values.part}`} under ulimit -n ${limit}, ${connections} connections, ${seconds} s:`);
console.log(`  requests ${total}: 2xx ${tally.ok} (${pct(tally.ok)}), non-2xx ${tally.non2xx} (${pct(tally.non2xx)}), connection errors ${tally.errors} (${pct(tally.errors)})`);
console.log(`  of the responses, non-2xx: ${((100 * tally.non2xx) / Math.max(tally.ok + tally.non2xx, 1)).toFixed(1)}%`);
console.log(`  a request afterwards: ${after === 200 ? `200 within ${recoveredMs} ms` : `failed for 5 s (${after})`}; still running: ${proxy.child!.exitCode === null}`);
const lines = stderr.split('\n').filter(Boolean);
console.log(`  proxy log: ${lines.length} lines${lines.length ? `, first: ${lines[0]}` : ''}`);
await proxy.stop();
for (const backend of backends) await backend.stop();
process.exit(0);
