// `npx tsx part-05-benchmarks/bench/tls.ts`: what TLS termination costs. Part 5, nginx and HAProxy
// terminate TLS with the same certificate (ECDSA P-256, then RSA 2048) in front of the same backend,
// in one interleaved run: a full handshake per request and a resumed one (openssl s_time -new and
// -reuse: a C client, so the generator is not the bottleneck a Node client would be), then
// keep-alive over TLS (wrk https). CPU is the server's, read from /proc: the client does not affect it.
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { fileURLToPath } from 'node:url';
import { cpuMicros, start, which, type Started } from './processes.ts';
import { haproxyTls, nginxTls, PART5_TLS, type TlsTarget } from './tls-targets.ts';
import { machine } from './report.ts';
import { issue, makeCa, opensslMissing, type Issued, type KeyType } from '../src/tls/openssl.ts';

const USAGE = `usage: npx tsx part-05-benchmarks/bench/tls.ts [--runs N] [--duration S] [--quick] [--out DIR]
  --runs N       measured runs per target, certificate and scenario, interleaved (default 3)
  --duration S   seconds per run (default 5)
  --quick        one run of 1 second (to check that it works; not figures to publish)
  --out DIR      where to write tls.json and tls.md (default: results/bench)`;

const { values } = parseArgs({
  options: { runs: { type: 'string' }, duration: { type: 'string' }, quick: { type: 'boolean', default: false }, out: { type: 'string' }, help: { type: 'boolean', default: false } },
});
if (values.help) {
  console.log(USAGE);
  process.exit(0);
}
const missing = opensslMissing();
if (missing) {
  console.error(`error: the TLS benchmark drives openssl s_time, and ${missing}`);
  process.exit(2);
}
const runs = Number(values.runs ?? (values.quick ? 1 : 3));
const seconds = Number(values.duration ?? (values.quick ? 1 : 5));
const wrk = which('wrk');
const ROOT = fileURLToPath(new URL('../..', import.meta.url));

interface Sample {
  /** Handshakes (s_time) or requests (wrk) completed, per second of wall time. */
  perSecond: number;
  /** The server's CPU (user + system, all its processes) per handshake or request, in µs. */
  cpuMicros: number;
  /** wrk's 99th percentile, ms; s_time gives none. */
  p99: number | null;
  /** s_time -reuse: the share of connections that really resumed. */
  resumedShare: number | null;
}

type ScenarioKey = 'new' | 'reuse' | 'keepalive';
const SCENARIOS: Array<{ key: ScenarioKey; name: string }> = [
  { key: 'new', name: 'full handshake per request (s_time -new)' },
  { key: 'reuse', name: 'resumed handshake per request (s_time -reuse)' },
  ...(wrk ? [{ key: 'keepalive' as const, name: 'keep-alive over TLS, 50 connections (wrk)' }] : []),
];
if (!wrk) console.error('wrk not found: the keep-alive scenario is left out');

const dir = mkdtempSync(join(tmpdir(), 'bench-tls-'));
const ca = makeCa(dir);
const pairs: Record<KeyType, Issued> = {
  ec: issue(dir, ca, 'ecdsa', ['localhost', '127.0.0.1'], { keyType: 'ec' }),
  rsa: issue(dir, ca, 'rsa', ['localhost', '127.0.0.1'], { keyType: 'rsa' }),
};
const targets = [PART5_TLS, nginxTls(), haproxyTls()].filter((t): t is TlsTarget => t !== undefined);
const backend = await start(process.execPath, ['--import', 'tsx', join(ROOT, 'part-05-benchmarks/bench/backend.ts')]);
const backendAddress = `127.0.0.1:${backend.port}`;

/** samples[target][key type][scenario] */
const samples = new Map<string, Sample[]>();
const keyOf = (target: string, keyType: KeyType, scenario: ScenarioKey) => `${target}|${keyType}|${scenario}`;

try {
  for (let run = 1; run <= runs; run++) {
    for (const keyType of ['ec', 'rsa'] as const) {
      for (const target of targets) {
        const server = await target.launch(backendAddress, pairs[keyType]);
        try {
          for (const scenario of SCENARIOS) {
            const sample = await measure(server, scenario.key);
            const key = keyOf(target.name, keyType, scenario.key);
            samples.set(key, [...(samples.get(key) ?? []), sample]);
            console.error(`run ${run} ${keyType} ${target.name} ${scenario.key}: ${sample.perSecond.toFixed(0)}/s, ${sample.cpuMicros.toFixed(0)} µs CPU each`);
          }
        } finally {
          await server.stop();
        }
      }
    }
  }
} finally {
  await backend.stop();
  rmSync(dir, { recursive: true, force: true });
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor((xs.length - 1) / 2)]!;
const rows: string[] = [];
for (const scenario of SCENARIOS) {
  rows.push('', `### ${scenario.name}`, '', '| server | certificate | per second | server CPU µs each | p99 ms |', '|---|---|---:|---:|---:|');
  for (const keyType of ['ec', 'rsa'] as const) {
    for (const target of targets) {
      const runsOf = samples.get(keyOf(target.name, keyType, scenario.key)) ?? [];
      if (runsOf.length === 0) continue;
      const p99 = runsOf.every((s) => s.p99 !== null) ? median(runsOf.map((s) => s.p99!)).toFixed(2) : '-';
      const resumed = scenario.key === 'reuse' ? ` (${(100 * median(runsOf.map((s) => s.resumedShare ?? 0))).toFixed(0)}% resumed)` : '';
      rows.push(`| ${target.name} | ${keyType === 'ec' ? 'ECDSA P-256' : 'RSA 2048'} | ${median(runsOf.map((s) => s.perSecond)).toFixed(0)}${resumed} | ${median(runsOf.map((s) => s.cpuMicros)).toFixed(0)} | ${p99} |`);
    }
  }
}
const command = `npx tsx part-05-benchmarks/bench/tls.ts ${process.argv.slice(2).join(' ')}`.trim();
const report = [`TLS termination: ${runs} run(s) of ${seconds} s, interleaved; medians. Command: \`${command}\``, `Machine: ${JSON.stringify(machine())}`, ...rows].join('\n');
console.log(report);
const out = values.out ?? join(ROOT, 'results/bench');
mkdirSync(out, { recursive: true });
writeFileSync(join(out, 'tls.md'), `${report}\n`);
writeFileSync(join(out, 'tls.json'), JSON.stringify({ command, runs, seconds, machine: machine(), samples: Object.fromEntries(samples) }, null, 2));

/** One scenario against a running server: the generator's count, and the server's CPU over it. */
async function measure(server: Started, scenario: ScenarioKey): Promise<Sample> {
  const pid = server.child!.pid!;
  const cpuBefore = cpuMicros(pid);
  const started = performance.now();
  const { count, p99, resumedShare } = scenario === 'keepalive' ? await runWrk(server.port) : await runSTime(server.port, scenario);
  const wall = (performance.now() - started) / 1000;
  const cpu = cpuMicros(pid) - cpuBefore;
  return { perSecond: count / wall, cpuMicros: count > 0 ? cpu / count : 0, p99, resumedShare };
}

/** openssl s_time: one connection after another, each with a GET /; prints * for a full handshake, r for a resumed one. */
async function runSTime(port: number, mode: 'new' | 'reuse'): Promise<{ count: number; p99: null; resumedShare: number | null }> {
  const child = spawn('openssl', ['s_time', '-connect', `127.0.0.1:${port}`, `-${mode}`, '-time', String(seconds), '-www', '/'], { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  child.stdout.on('data', (chunk: Buffer) => (out += chunk));
  child.stderr.resume();
  await once(child, 'close');
  const count = Number(/(\d+) connections in [\d.]+s/.exec(out)?.[1] ?? 0);
  const marks = out.match(/^[r*]+$/m)?.[0] ?? '';
  return { count, p99: null, resumedShare: mode === 'reuse' && marks.length > 0 ? [...marks].filter((c) => c === 'r').length / marks.length : null };
}

async function runWrk(port: number): Promise<{ count: number; p99: number; resumedShare: null }> {
  // wrk first makes its 50 handshakes: on a busy machine one second may pass before a request completes.
  const wrkSeconds = values.quick ? Math.max(seconds, 3) : seconds;
  const child = spawn(wrk!, ['-t1', '-c50', `-d${wrkSeconds}s`, '--latency', `https://127.0.0.1:${port}/`], { stdio: ['ignore', 'pipe', 'inherit'] });
  let out = '';
  child.stdout.on('data', (chunk: Buffer) => (out += chunk));
  await once(child, 'close');
  const p99 = /99%\s+([\d.]+)(us|ms|s)/.exec(out);
  const scale = { us: 0.001, ms: 1, s: 1000 }[(p99?.[2] ?? 'ms') as 'us' | 'ms' | 's'];
  return { count: Number(/(\d+) requests in/.exec(out)?.[1] ?? 0), p99: p99 ? Number(p99[1]) * scale : 0, resumedShare: null };
}
