// wrk as the load generator: its own process, its CPU time sampled from /proc, its report parsed.
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { cpuMicros } from './processes.ts';
import type { Measurement, Scenario } from './report.ts';

/** What a generator reports; the harness adds the proxy's CPU figures. */
export type Generated = Omit<Measurement, 'proxyMicrosPerRequest' | 'proxyUserMicrosPerRequest' | 'proxySystemMicrosPerRequest' | 'generatorCpuPercent'>;

/** wrk keeps its connections alive, or with "Connection: close" reconnects for every request. */
export async function runWrk(wrk: string, port: number, scenario: Scenario, seconds: number): Promise<Generated> {
  const close = scenario.close ? ['-H', 'Connection: close'] : [];
  const child = spawn(wrk, ['-t1', `-c${scenario.connections}`, `-d${seconds}s`, '--latency', ...close, `http://127.0.0.1:${port}${scenario.path}`], {
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  let out = '';
  let cpu = 0;
  child.stdout.on('data', (chunk: Buffer) => (out += chunk));
  const sampler = setInterval(() => (cpu = cpuMicros(child.pid!) || cpu), 100);
  await once(child, 'close');
  clearInterval(sampler);
  const number = (re: RegExp) => Number(re.exec(out)?.[1] ?? 0);
  const ms = (re: RegExp) => {
    const m = re.exec(out);
    if (!m) return 0;
    const scale = { us: 0.001, ms: 1, s: 1000 }[m[2] as 'us' | 'ms' | 's'] ?? 1;
    return Number(m[1]) * scale;
  };
  const requests = number(/(\d+) requests in/);
  // Apart, because they mean different things: a connection closed at the door is a read error, a slow answer a timeout.
  const errorsByKind: Record<string, number> = { 'non-2xx': number(/Non-2xx or 3xx responses: (\d+)/) };
  for (const m of out.matchAll(/(connect|read|write|timeout) (\d+)/g)) errorsByKind[m[1]!] = Number(m[2]);
  const errors = Object.values(errorsByKind).reduce((n, count) => n + count, 0);
  return {
    requests,
    rps: number(/Requests\/sec:\s+([\d.]+)/),
    p50: ms(/50%\s+([\d.]+)(us|ms|s)/),
    p99: ms(/99%\s+([\d.]+)(us|ms|s)/),
    errors,
    errorsByKind,
    generatorCpuMs: cpu / 1000,
    generator: 'wrk',
  };
}
