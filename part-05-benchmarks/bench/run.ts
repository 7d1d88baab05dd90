// `npm run bench`: every part and the baselines, in every scenario, interleaved runs. Results go
// to results/bench/ (ignored by git); only --publish rewrites the book's published report.
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { fileURLToPath } from 'node:url';
import { cpuTimes, limitProxyFiles, start, which, type Started } from './processes.ts';
import { runWrk, type Generated } from './wrk.ts';
import { DIRECT, HTTP_FLOOR, HTTP_PROXY, haproxyTarget, nginxTarget, PARTS, proxyIn, UNDICI_PROXY, type Target } from './targets.ts';
import { machine, writeReport, type Measurement, type Results, type Scenario } from './report.ts';
import { checkout, type Build } from './builds.ts';
import { checkRunName, keepRun } from './kept-runs.ts';
import { ledgerTargets, writeLedger, type LedgerPatch } from './ledger.ts';
import { addTuningTargets, TUNING_USAGE } from './tuning.ts';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const HERE = fileURLToPath(new URL('.', import.meta.url));
const USAGE = `usage: npm run bench -- [options]
  --part N         one part (1-5), with the baselines (part 5 also beside both floors: part 2's pump
                   and the HTTP floor); every part folder's \`npm run bench\` does this
  --scenario KEY   one scenario: small, 64k, close, c1000, killed
  --quick          about a second per run, one run, no warm-up
  --runs N         measured runs per target and scenario (default 3)
  --duration S     seconds per run (default 5)
  --before DIR     also measure the proxy in DIR/src/main.ts as "before" (a tuning step's baseline)
  --at COMMIT      also measure part 5 as it was at COMMIT (checked out into a temporary
                   worktree, labelled @HASH); give it as often as needed
  --fd-limit N     start every proxy under an open-file limit of N (ulimit -n, soft and hard, set
                   with prlimit); the generator and the backends keep the harness's own
  --workers N      also measure part 5 with --workers N, once per way the workers share the port
                   (NODE_CLUSTER_SCHED_POLICY rr: the primary hands connections out; none: the kernel)
  --access-log     part 5 and each --at build write an access log (to a temporary file), so a
                   change to the log is measured against the commits before it
  --admin          also measure part 5 with its admin listener on (what the status page costs
                   when nobody is looking at it)
  --ledger         the cost ledger: direct, part 2's pump, the HTTP floor, part 5 and an unpatched
                   copy of it (the run's noise), then part 5 without each guarantee (one temporary
                   copy per patch in bench/ledger/, applied with git apply), part 5 + access log
                   and part 5 + admin, in one interleaved run of the small scenario (unless
                   --scenario says otherwise), each round starting at another target; prints and writes
                   ledger.md: each guarantee's µs per request and its share of the gap between part
                   5 and the HTTP floor. A patch that no longer applies is an error (exit 2).
                   With --quick: a smoke run
${TUNING_USAGE}
  --out DIR        where to write latest.json, benchmarks.md and .svg (default: results/bench)
  --keep NAME      also keep this run as docs/runs/NAME.json, for the chapters to quote
                   (each quoted table is marked <!-- run: NAME, scenario: KEY -->; a docs test checks it)
  --publish        write the book's published report instead: docs/benchmarks.md and .svg and
                   part-05-benchmarks/results/latest.json (a full run only)
  --help           this text`;

/** A bad flag: one line (or the usage) on stderr, and exit 2, before anything starts. */
function refuse(message: string): never {
  console.error(message);
  process.exit(2);
}

let values;
try {
  ({ values } = parseArgs({
    options: {
      part: { type: 'string' },
      scenario: { type: 'string' },
      before: { type: 'string' },
      at: { type: 'string', multiple: true },
      workers: { type: 'string' },
      'fd-limit': { type: 'string' },
      admin: { type: 'boolean', default: false },
      'access-log': { type: 'boolean', default: false },
      ledger: { type: 'boolean', default: false },
      tuning: { type: 'boolean', default: false },
      quick: { type: 'boolean', default: false },
      runs: { type: 'string' },
      duration: { type: 'string' },
      out: { type: 'string' },
      publish: { type: 'boolean', default: false },
      keep: { type: 'string' },
      help: { type: 'boolean', default: false },
    },
  }));
} catch (err) {
  refuse(`error: ${(err as Error).message}\n${USAGE}`);
}
if (values.help) {
  console.log(USAGE);
  process.exit(0);
}
if (values.publish && (values.quick || values.part !== undefined || values.scenario !== undefined || values.out !== undefined)) {
  refuse('error: --publish is for a full run only: no --quick, --part, --scenario or --out');
}
if (values.ledger && (values.publish || (values.part !== undefined && Number(values.part) !== 5))) {
  refuse('error: --ledger measures part 5 against the HTTP floor: no --publish, and no --part but 5');
}
if (values.tuning && (values.publish || values.ledger || (values.part !== undefined && Number(values.part) !== 5))) {
  refuse('error: --tuning measures part 5 against its own steps taken back: no --publish, no --ledger, and no --part but 5');
}
const badName = values.keep === undefined ? undefined : checkRunName(values.keep);
if (badName) refuse(`error: ${badName}`);
const quick = values.quick;
const runs = Number(values.runs ?? (quick ? 1 : 3));
const duration = Number(values.duration ?? (quick ? 1 : 5));
const wrk = which('wrk');

const SCENARIOS: Scenario[] = [
  { name: 'keep-alive, small responses', key: 'small', connections: 50, path: '/', headline: true },
  { name: 'keep-alive, 64 KiB responses', key: '64k', connections: 50, path: '/64k' },
  { name: 'one connection per request', key: 'close', connections: 50, path: '/', close: true },
  { name: '1,000 concurrent connections', key: 'c1000', connections: 1000, path: '/' },
  { name: 'pool of 3, one backend killed mid-run', key: 'killed', connections: 50, path: '/', killBackend: true },
];

// The ledger is about per-request cost: the small scenario, unless asked for another.
const scenarioKey = values.scenario ?? (values.ledger ? 'small' : undefined);
const scenarios = SCENARIOS.filter((s) => scenarioKey === undefined || s.key === scenarioKey);
if (scenarios.length === 0) refuse(`error: --scenario must be one of ${SCENARIOS.map((s) => s.key).join(', ')}, got "${values.scenario}"`);
const nginx = nginxTarget();
const haproxy = haproxyTarget();
const systemProxies = [...(nginx ? [nginx] : []), ...(haproxy ? [haproxy] : [])];
// The two floors stand next to each other: part 2's pump for TCP, the HTTP floor for HTTP.
let targets: Target[] = [DIRECT, ...PARTS.slice(0, 2), HTTP_FLOOR, ...PARTS.slice(2), HTTP_PROXY, UNDICI_PROXY, ...systemProxies];
if (values.part !== undefined || values.tuning) {
  const wanted = PARTS.find((t) => t.name === `part ${Number(values.part ?? 5)}`);
  if (!wanted) {
    refuse(`error: --part must be 1-${PARTS.length}, got "${values.part}"`);
  }
  // Part 5 is always measured beside both floors.
  const floors = wanted === PARTS[4] ? [PARTS[1]!, HTTP_FLOOR] : [];
  targets = [DIRECT, ...floors, wanted, HTTP_PROXY, UNDICI_PROXY, ...systemProxies];
}
let ledger: { patches: LedgerPatch[]; remove(): void } | undefined;
if (values.ledger) {
  try {
    const built = ledgerTargets(ROOT);
    ledger = built;
    process.on('exit', () => built.remove());
    // The floors and part 5, then part 5 less each guarantee, and part 5 with each flag on.
    targets = [DIRECT, PARTS[1]!, HTTP_FLOOR, PARTS[4]!, ...built.targets];
  } catch (err) {
    refuse(`error: ${(err as Error).message}`);
  }
}
if (values.before !== undefined) targets.splice(1, 0, proxyIn('before', values.before));
const builds: Build[] = [];
process.on('exit', () => builds.forEach((b) => b.remove()));
for (const commit of values.at ?? []) {
  try {
    builds.push(checkout(ROOT, commit));
  } catch (err) {
    refuse(`error: --at ${commit}: ${((err as { stderr?: string }).stderr ?? String(err)).trim()}`);
  }
}
const partFive = targets.findIndex((t) => t.name === 'part 5');
targets.splice(partFive === -1 ? 1 : partFive, 0, ...builds.map((b) => proxyIn(b.label, b.folder)));
for (const b of builds) console.log(`${b.label}: ${b.subject}`);
const tuning = values.tuning ? addTuningTargets(ROOT, targets) : undefined;
if (values.workers !== undefined) {
  const at = targets.findIndex((t) => t.name === 'part 5') + 1 || targets.length;
  // Both of Node's ways to share the port, named: the primary accepts and hands each connection to a
  // worker in turn (rr), or every worker accepts from the one socket and the kernel picks (none).
  const workers = (policy: string) =>
    proxyIn(`part 5 ×${values.workers} ${policy}`, join(ROOT, 'part-05-benchmarks'), true, ['--workers', values.workers!], { NODE_CLUSTER_SCHED_POLICY: policy });
  targets.splice(at, 0, workers('rr'), workers('none'));
}
if (values.admin) {
  const at = targets.findIndex((t) => t.name === 'part 5') + 1 || targets.length;
  targets.splice(at, 0, proxyIn('part 5 +admin', join(ROOT, 'part-05-benchmarks'), true, ['--admin', '127.0.0.1:0']));
}
if (values['access-log']) {
  // Each build of part 5 writes its own access log, so a change to the log is measured before and after.
  const logs = mkdtempSync(join(tmpdir(), 'bench-logs-'));
  process.on('exit', () => rmSync(logs, { recursive: true, force: true }));
  const folders = new Map([['part 5', join(ROOT, 'part-05-benchmarks')], ...[...builds, ...(tuning ?? [])].map((b): [string, string] => [b.label, b.folder])]);
  targets = targets.map((t) => {
    const folder = folders.get(t.name);
    return folder ? proxyIn(`${t.name} +log`, folder, true, ['--access-log', join(logs, `${t.name.replace(/\W/g, '')}.log`)]) : t;
  });
}
const missing = [nginx ? '' : 'nginx', haproxy ? '' : 'haproxy'].filter(Boolean);
console.log(`targets: ${targets.map((t) => t.name).join(', ')}${missing.length ? ` (not installed, so not compared: ${missing.join(', ')}; apt-get install -y ${missing.join(' ')})` : ''}`);
const fdLimit = values['fd-limit'] === undefined ? undefined : Number(values['fd-limit']);
if (fdLimit !== undefined && !(Number.isInteger(fdLimit) && fdLimit >= 64)) refuse(`error: --fd-limit must be a whole number of descriptors, at least 64, got "${values['fd-limit']}"`);
if (fdLimit !== undefined) limitProxyFiles(fdLimit);
console.log(`open-file limit (ulimit -n): ${fdLimit === undefined ? `${machine().openFiles} for every process` : `${fdLimit} for the proxies, ${machine().openFiles} for the generator and backends`}`);
console.log(
  quick
    ? `--quick: ${runs} run of ${duration} s per target and scenario, no warm-up. Cold figures: they check that the harness works and are not comparable with a full run's.`
    : `${runs} measured run(s) of ${duration} s per target and scenario, after a warm-up; interleaved.`,
);

const backends: Started[] = [];
const backendScript = join(HERE, 'backend.ts');
for (let i = 0; i < 3; i++) backends.push(await start(process.execPath, ['--import', 'tsx', backendScript]));
const addresses = backends.map((b) => `127.0.0.1:${b.port}`);

const flags = process.argv.slice(2).join(' ');
const command = `npm run bench${flags ? ` -- ${flags}` : ''}`;
const results: Results = {
  machine: machine(),
  settings: {
    command,
    runs,
    duration,
    quick,
    wrk: Boolean(wrk),
    proxyFileLimit: fdLimit,
    builds: builds.map(({ label, commit, subject }) => ({ label, commit, subject })),
    ledger: ledger?.patches.map((p) => ({ label: `part 5 − ${p.name}`, patch: `bench/ledger/${p.name}.patch`, guarantee: p.guarantee })),
    tuning: tuning?.map(({ label, patches }) => ({ label, patches })),
  },
  scenarios: [],
};
try {
  for (const [s, scenario] of scenarios.entries()) {
    const here = targets.filter((t) => !scenario.killBackend || t.pool);
    const started = new Map<Target, Started>();
    for (const target of here) started.set(target, await target.launch(addresses));
    const measurements = new Map<Target, Measurement[]>(here.map((t) => [t, []]));
    try {
      const firstRun = quick ? 1 : 0; // run 0 is the warm-up
      const total = here.length * (runs + 1 - firstRun);
      let i = 0;
      for (let run = firstRun; run <= runs; run++) {
        // The ledger's and the tuning's rows differ by a few µs: each round starts at another target, so none is always first or last.
        const shift = (values.ledger || values.tuning) && run > 0 ? Math.round(((run - 1) * here.length) / runs) : 0;
        for (const target of [...here.slice(shift), ...here.slice(0, shift)]) {
          i++;
          const label = run === 0 ? 'warm-up' : `run ${run}/${runs}`;
          process.stdout.write(`[${s + 1}/${scenarios.length} ${scenario.key}] ${target.name.padEnd(10)} ${label} (${i}/${total})\n`);
          const m = await measure(started.get(target)!, scenario, run === 0 ? Math.min(duration, 1) : duration, run === 0);
          if (run > 0) measurements.get(target)!.push(m);
        }
      }
    } finally {
      for (const s of started.values()) await s.stop();
    }
    results.scenarios.push({ scenario, targets: here.map((t) => ({ target: t.name, runs: measurements.get(t)! })) });
  }
} finally {
  for (const b of backends) await b.stop();
}

// A run writes to an ignored folder; the published report changes only when asked to.
const outDir = values.publish ? join(ROOT, 'part-05-benchmarks/results') : (values.out ?? join(ROOT, 'results/bench'));
mkdirSync(outDir, { recursive: true });
writeFileSync(join(outDir, 'latest.json'), JSON.stringify(results, null, 2) + '\n');
const reportPath = values.publish ? join(ROOT, 'docs/benchmarks.md') : join(outDir, 'benchmarks.md');
const table = writeReport(results, reportPath);
console.log(`\n${table}`);
console.log(`req/s: median of the runs. p99: 99th-percentile latency. errors: failed requests the generator saw.
µs/req: the proxy's user+system CPU time per request served, from /proc ("-": no proxy process);
  in brackets, user/system apart: JavaScript's work, and the kernel's (system calls, TCP).
gen N%: the load generator's own CPU use; "*" above 90% means the generator, not the proxy, was the limit.`);
console.log(`\nwrote ${join(outDir, 'latest.json')} and ${reportPath}${values.publish ? ' (published)' : ''}`);
if (ledger) console.log(writeLedger(results, ledger.patches, outDir));
if (values.keep !== undefined) console.log(`kept as ${keepRun(ROOT, values.keep, results)}`);

/** One measured run: the generator in its own process, the proxy's CPU time read around it. */
async function measure(target: Started, scenario: Scenario, seconds: number, warmUp: boolean): Promise<Measurement> {
  const pid = target.child?.pid;
  const cpuBefore = pid ? cpuTimes(pid) : { user: 0, system: 0 };
  let killer: NodeJS.Timeout | undefined;
  // Not in the warm-up: a backend marked down there would still be down in the measured run.
  const kill = scenario.killBackend && !warmUp;
  if (kill) killer = setTimeout(() => backends[2]!.child!.kill('SIGKILL'), (seconds * 1000) / 2);
  const result = await generate(target.port, scenario, seconds);
  if (killer) clearTimeout(killer);
  const after = pid ? cpuTimes(pid) : { user: 0, system: 0 };
  const [user, system] = [after.user - cpuBefore.user, after.system - cpuBefore.system];
  const cpu = user + system;
  if (kill) {
    // Bring the killed backend back on its port for the next run.
    await backends[2]!.stop();
    backends[2] = await start(process.execPath, ['--import', 'tsx', backendScript, addresses[2]!.split(':')[1]!]);
  }
  return {
    ...result,
    proxyMicrosPerRequest: pid && result.requests > 0 ? cpu / result.requests : undefined,
    proxyUserMicrosPerRequest: pid && result.requests > 0 ? user / result.requests : undefined,
    proxySystemMicrosPerRequest: pid && result.requests > 0 ? system / result.requests : undefined,
    generatorCpuPercent: (result.generatorCpuMs / (seconds * 1000)) * 100,
  };
}

async function generate(port: number, scenario: Scenario, seconds: number): Promise<Generated> {
  // wrk, when installed, costs the shared CPU less than autocannon; the report names the generator.
  if (wrk && !scenario.killBackend) return runWrk(wrk, port, scenario, seconds);
  // The killed scenario counts lost requests, which autocannon does not see (it reconnects quietly).
  const [script, generator] = scenario.close ? ['close-generator.ts', 'own'] : scenario.killBackend ? ['counting-generator.ts', 'counting'] : ['autocannon-runner.ts', 'autocannon'];
  const args = scenario.close || scenario.killBackend
    ? [join(HERE, script), String(port), String(scenario.connections), String(seconds)]
    : [join(HERE, script), `http://127.0.0.1:${port}${scenario.path}`, String(scenario.connections), String(seconds), '', '0'];
  const child = spawn(process.execPath, ['--import', 'tsx', ...args], { stdio: ['ignore', 'pipe', 'inherit'] });
  let out = '';
  child.stdout.on('data', (chunk: Buffer) => (out += chunk));
  await once(child, 'close');
  return { ...JSON.parse(out.trim().split('\n').at(-1)!), generator };
}
