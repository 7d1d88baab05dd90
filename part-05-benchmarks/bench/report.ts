// Turning measurements into a table, a markdown report and an SVG bar chart.
import { spawnSync } from 'node:child_process';
import { cpus } from 'node:os';
import { basename, dirname, join } from 'node:path';
import { writeFileSync } from 'node:fs';
import { which } from './processes.ts';
import { openFileLimit } from '../src/fd-budget.ts';

export interface Scenario {
  name: string;
  key: string;
  connections: number;
  path: string;
  close?: boolean;
  killBackend?: boolean;
  headline?: boolean;
}

export interface Measurement {
  requests: number;
  rps: number;
  p50: number;
  p99: number;
  errors: number;
  /** wrk's errors by kind (connect, read, write, timeout, non-2xx), when wrk measured. */
  errorsByKind?: Record<string, number>;
  generatorCpuMs: number;
  generator: string;
  proxyMicrosPerRequest: number | undefined;
  /** The same split: user (JavaScript, V8) and system (the kernel: syscalls, TCP). */
  proxyUserMicrosPerRequest?: number;
  proxySystemMicrosPerRequest?: number;
  generatorCpuPercent: number;
}

export interface Results {
  machine: Record<string, string | number>;
  settings: {
    command: string;
    runs: number;
    duration: number;
    quick: boolean;
    wrk: boolean;
    /** Other commits measured in the same run (--at), as labelled in the tables. */
    builds?: Array<{ label: string; commit: string; subject: string }>;
    /** --fd-limit: the open-file limit the proxies ran under (the generator and backends had the machine's). */
    proxyFileLimit?: number;
    /** Part 5 with one ledger patch applied each (--ledger), as labelled in the tables. */
    ledger?: Array<{ label: string; patch: string; guarantee: string }>;
    /** Part 5 with tuning steps taken back (--tuning): the patches applied, in order. */
    tuning?: Array<{ label: string; patches: string[] }>;
  };
  scenarios: Array<{ scenario: Scenario; targets: Array<{ target: string; runs: Measurement[] }> }>;
}

export function machine(): Record<string, string | number> {
  const nginx = which('nginx');
  return {
    date: new Date().toISOString().slice(0, 10),
    cpu: cpus()[0]?.model ?? 'unknown',
    cores: cpus().length,
    node: process.version,
    // `nginx -v` prints its version on stderr.
    nginx: nginx ? spawnSync(nginx, ['-v'], { encoding: 'utf8' }).stderr.trim() || 'nginx installed' : 'nginx not installed',
    // Every target inherits it: the c1000 scenario's errors depend on it (part 2's descriptor budget).
    openFiles: openFileLimit() ?? 'unknown',
  };
}

export const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length === 0 ? 0 : s.length % 2 ? s[(s.length - 1) / 2]! : (s[s.length / 2 - 1]! + s[s.length / 2]!) / 2;
};
const fmt = (n: number) => Math.round(n).toLocaleString('en-US');

interface Row {
  target: string;
  rps: number;
  min: number;
  max: number;
  p50: number;
  p99: number;
  errors: number;
  /** The errors by kind, summed over the runs ("read 3297, timeout 12"), or "". */
  errorKinds: string;
  micros: number | undefined;
  /** "user/system" µs per request, when the runs recorded the split. */
  split: string;
  generatorCpu: number;
  generator: string;
}

function kinds(runs: Measurement[]): string {
  const sum = new Map<string, number>();
  for (const r of runs) for (const [kind, n] of Object.entries(r.errorsByKind ?? {})) sum.set(kind, (sum.get(kind) ?? 0) + n);
  return [...sum].filter(([, n]) => n > 0).map(([kind, n]) => `${kind} ${n}`).join(', ');
}

function rows(entry: Results['scenarios'][number]): Row[] {
  return entry.targets.map(({ target, runs }) => {
    const micros = runs.map((r) => r.proxyMicrosPerRequest).filter((m): m is number => m !== undefined);
    const user = runs.map((r) => r.proxyUserMicrosPerRequest).filter((m): m is number => m !== undefined);
    const system = runs.map((r) => r.proxySystemMicrosPerRequest).filter((m): m is number => m !== undefined);
    return {
      target,
      rps: median(runs.map((r) => r.rps)),
      min: Math.min(...runs.map((r) => r.rps)),
      max: Math.max(...runs.map((r) => r.rps)),
      p50: median(runs.map((r) => r.p50)),
      p99: median(runs.map((r) => r.p99)),
      errors: runs.reduce((n, r) => n + r.errors, 0),
      errorKinds: kinds(runs),
      micros: micros.length ? median(micros) : undefined,
      split: user.length && system.length ? `${median(user).toFixed(0)}/${median(system).toFixed(0)}` : '-',
      generatorCpu: median(runs.map((r) => r.generatorCpuPercent)),
      generator: runs[0]?.generator ?? '',
    };
  });
}

/** One scenario's markdown table: what the report shows, and what a chapter quotes from a kept run. */
export function scenarioTable(entry: Results['scenarios'][number]): string {
  const table = rows(entry);
  const direct = table.find((r) => r.target === 'direct');
  const nginx = table.find((r) => r.target === 'nginx');
  const floor = table.find((r) => r.target === 'http floor');
  let md = '| target | req/s | p50 ms | p99 ms | errors | proxy µs/req | user/system µs | generator CPU | × direct | × nginx | CPU × floor |\n| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |\n';
  for (const r of table) {
    const bound = r.generatorCpu > 90 ? '*' : '';
    const ratio = (base: Row | undefined) => (base && base.rps > 0 ? (r.rps / base.rps).toFixed(2) : '-');
    // CPU per request against the HTTP floor's: the figure that does not depend on who won the cores.
    const cpu = floor?.micros && r.micros !== undefined ? (r.micros / floor.micros).toFixed(2) : '-';
    md += `| ${r.target} | ${fmt(r.rps)} (${fmt(r.min)}-${fmt(r.max)}) | ${r.p50.toFixed(1)} | ${r.p99.toFixed(1)} | ${r.errors} | ${r.micros === undefined ? '-' : r.micros.toFixed(0)} | ${r.split} | ${r.generatorCpu.toFixed(0)}%${bound} | ${ratio(direct)} | ${ratio(nginx)} | ${cpu} |\n`;
  }
  return md;
}

/** Writes the markdown report and its SVG chart; returns a plain-text table for the terminal. */
export function writeReport(results: Results, markdownPath: string): string {
  const m = results.machine;
  const s = results.settings;
  let md = `# Benchmark results\n\nGenerated by \`${s.command}\` on ${m.date}: ${m.cpu}, ${m.cores} cores, Node.js ${m.node}, ${m.nginx}, open-file limit ${s.proxyFileLimit !== undefined ? `${s.proxyFileLimit} for the proxies (--fd-limit), ${m.openFiles} for the rest` : (m.openFiles ?? 'not recorded')}; load from ${s.wrk ? 'wrk' : 'autocannon, and the harness\'s own connection-per-request generator'} (the killed scenario: a client that counts every lost request; each table names its generator).\n`;
  md += s.quick
    ? `--quick: ${s.runs} run of ${s.duration} s per target and scenario, no warm-up: cold figures, not comparable with a full run's. `
    : `${s.runs} measured run(s) of ${s.duration} s per target and scenario, after a 1 s warm-up, interleaved across targets. `;
  for (const b of s.builds ?? []) md += `\`${b.label}\` is part 5 at commit ${b.commit} ("${b.subject}"). `;
  for (const l of s.ledger ?? []) md += `\`${l.label}\` is part 5 without ${l.guarantee} (${l.patch}). `;
  for (const t of s.tuning ?? []) md += `\`${t.label}\` is today's part 5 with ${t.patches.join(', ')} applied, in that order. `;
  md += 'req/s is the median (min-max); latencies are medians of the runs; errors are summed. ';
  md += 'Proxy CPU is user+system time of the proxy\'s processes (from /proc) per request served, and the two apart (user: JavaScript; system: the kernel). ';
  md += 'Generator CPU above ~90% means the load generator, not the proxy, was the limit (marked *). ';
  md += 'CPU × floor is proxy CPU per request against the HTTP floor\'s (`bench/http-floor.ts`, a minimal keep-alive proxy that is not a product): req/s depends on who wins the two cores, CPU per request much less.\n';
  let text = '';
  let svg = '';
  for (const entry of results.scenarios) {
    const table = rows(entry);
    md += `\n## ${entry.scenario.name}\n\n${entry.scenario.connections} connections, \`GET ${entry.scenario.path}\`, generator: ${table[0]?.generator}.\n\n`;
    md += scenarioTable(entry);
    text += `\n${entry.scenario.name}\n`;
    const width = Math.max(11, ...table.map((r) => r.target.length)); // "untuned (steps 1-3 taken back)" is long
    for (const r of table) {
      const bound = r.generatorCpu > 90 ? '*' : '';
      text += `  ${r.target.padEnd(width)} ${fmt(r.rps).padStart(8)} req/s  p99 ${r.p99.toFixed(1).padStart(6)} ms  errors ${String(r.errors).padStart(5)}  ${r.micros === undefined ? '      -' : r.micros.toFixed(0).padStart(5) + ' µs'}/req (${r.split.padStart(7)})  gen ${r.generatorCpu.toFixed(0)}%${bound}${r.errorKinds ? `  (${r.errorKinds})` : ''}\n`;
    }
    if (entry.scenario.headline) svg = chart(entry.scenario.name, table);
  }
  const svgPath = join(dirname(markdownPath), 'benchmarks.svg');
  if (svg) {
    writeFileSync(svgPath, svg);
    md = md.replace('\n## ', `\n![req/s and proxy CPU per request, ${results.scenarios.find((e) => e.scenario.headline)?.scenario.name}](${basename(svgPath)})\n\n## `);
  }
  writeFileSync(markdownPath, md);
  return text;
}

/** A horizontal bar chart of median req/s, with proxy CPU per request as a label. */
function chart(title: string, table: Row[]): string {
  const width = 720;
  const bar = 26;
  const left = 110;
  const top = 40;
  const max = Math.max(...table.map((r) => r.rps), 1);
  const height = top + table.length * (bar + 10) + 20;
  let out = `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" font-family="sans-serif" font-size="13">\n`;
  out += `<rect width="100%" height="100%" fill="white"/>\n<text x="10" y="22" font-size="15" font-weight="bold">${title}: median req/s (proxy CPU per request)</text>\n`;
  table.forEach((r, i) => {
    const y = top + i * (bar + 10);
    const w = Math.max(1, ((width - left - 170) * r.rps) / max);
    const colour = r.target === 'nginx' ? '#2f855a' : r.target.startsWith('part') ? '#2b6cb0' : '#718096';
    out += `<text x="${left - 8}" y="${y + bar / 2 + 4}" text-anchor="end">${r.target}</text>\n`;
    out += `<rect x="${left}" y="${y}" width="${w.toFixed(1)}" height="${bar}" fill="${colour}"/>\n`;
    const label = `${fmt(r.rps)}${r.micros === undefined ? '' : ` (${r.micros.toFixed(0)} µs)`}`;
    out += `<text x="${(left + w + 6).toFixed(1)}" y="${y + bar / 2 + 4}">${label}</text>\n`;
  });
  return `${out}</svg>\n`;
}
