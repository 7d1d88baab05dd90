// The cost ledger (`npm run bench -- --ledger`): what each guarantee the load balancer adds over the HTTP floor
// costs per request. Each patch in bench/ledger/ takes one guarantee out of a temporary copy of
// this part; all the copies run in the same interleaved run as the load balancer itself and the
// floor, and a guarantee's cost is its CPU per request less its copy's. The access log and the admin listener are
// flags, not patches: they are measured as the load balancer with the flag on.
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { copyPart, patched, type Build } from './builds.ts';
import { median, type Results } from './report.ts';
import { proxyIn, type Target } from './targets.ts';

export const LEDGER_DIR = fileURLToPath(new URL('ledger/', import.meta.url));
const ACCESS_LOG = 'part 5 + access log';
const ADMIN = 'part 5 + admin';
/** Part 5 again, from an unpatched copy: what it measures apart from part 5 is the run's noise. */
const CONTROL = 'part 5, again';

export interface LedgerPatch {
  /** The file, e.g. bench/ledger/deadlines.patch. */
  path: string;
  /** Its name (the file's, without .patch): the target is "part 5 − NAME". */
  name: string;
  /** What it takes out, from its "Ledger:" line. */
  guarantee: string;
  /** What nginx does for that guarantee, from its "nginx:" paragraph. */
  nginx: string;
}

/** The ledger's patches, in name order, each with its top comment read (git apply ignores it). */
export function ledgerPatches(dir = LEDGER_DIR): LedgerPatch[] {
  return readdirSync(dir)
    .filter((file) => file.endsWith('.patch'))
    .sort()
    .map((file) => {
      const text = readFileSync(join(dir, file), 'utf8');
      const comment = text.slice(0, Math.max(0, text.indexOf('diff --git')));
      const guarantee = /^Ledger: (.+)$/m.exec(comment)?.[1];
      const nginx = /^nginx: ([\s\S]*?)\n(?:Applied by|$)/m.exec(comment)?.[1];
      if (!guarantee || !nginx) throw new Error(`${file}: its comment must have a "Ledger:" line and an "nginx:" paragraph`);
      return { path: join(dir, file), name: file.replace(/\.patch$/, ''), guarantee, nginx: nginx.replace(/\s+/g, ' ').trim() };
    });
}

/** One build per patch, and the two flag targets; remove() deletes the temporary copies. Throws with git's message for a patch that does not apply. */
export function ledgerTargets(root: string): { patches: LedgerPatch[]; targets: Target[]; remove(): void } {
  const patches = ledgerPatches();
  const logDir = mkdtempSync(join(tmpdir(), 'bench-access-log-'));
  const builds: Build[] = [];
  const control = copyPart(root);
  const remove = () => {
    control.remove();
    for (const b of builds.splice(0)) b.remove();
    rmSync(logDir, { recursive: true, force: true });
  };
  for (const patch of patches) {
    try {
      builds.push(patched(root, patch.path));
    } catch (err) {
      remove();
      const message = ((err as { stderr?: string }).stderr ?? String(err)).trim();
      throw new Error(`ledger patch bench/ledger/${patch.name}.patch does not apply to today's part 5: ${message}`);
    }
  }
  const part5 = join(root, 'part-05-benchmarks');
  const targets = [
    proxyIn(CONTROL, control.folder),
    ...builds.map((b) => proxyIn(b.label, b.folder)),
    proxyIn(ACCESS_LOG, part5, true, ['--access-log', join(logDir, 'access.log')]),
    proxyIn(ADMIN, part5, true, ['--admin', '127.0.0.1:0']),
  ];
  return { patches, targets, remove };
}

const micros = (results: Results['scenarios'][number], target: string): number[] =>
  results.targets.find((t) => t.target === target)?.runs.map((r) => r.proxyMicrosPerRequest).filter((m): m is number => m !== undefined) ?? [];

/** The ledger, from the first scenario of a run: written to DIR/ledger.md, returned as text for the terminal. */
export function writeLedger(results: Results, patches: LedgerPatch[], outDir: string): string {
  const entry = results.scenarios[0]!;
  const of = (target: string) => {
    const runs = micros(entry, target);
    return { median: median(runs), range: runs.length ? `${Math.min(...runs).toFixed(0)}-${Math.max(...runs).toFixed(0)}` : '-' };
  };
  const part5 = of('part 5');
  const floor = of('http floor');
  const gap = part5.median - floor.median;
  const us = (n: number) => n.toFixed(1);
  const share = (n: number) => (gap > 0 ? `${((100 * n) / gap).toFixed(0)}%` : '-');
  const m = results.machine;
  let md = `# What each guarantee costs: the ledger\n\n\`${results.settings.command}\` on ${m.date}: ${m.cpu}, ${m.cores} cores, Node.js ${m.node}; `;
  md += `${entry.scenario.name}, ${entry.scenario.connections} connections, generator ${entry.targets[0]?.runs[0]?.generator ?? '-'}; `;
  md += `${results.settings.runs} interleaved run(s) of ${results.settings.duration} s${results.settings.quick ? ' (--quick: cold figures, a smoke run only)' : ''}. `;
  md += 'µs/req is the median of the runs of the proxy\'s CPU time (user+system) per request, with the range of the runs; ';
  md += 'saving is part 5 less part 5 without the guarantee, and its share is of the gap between part 5 and the HTTP floor.\n\n';
  md += `Part 5: ${us(part5.median)} µs/req (${part5.range}); the HTTP floor: ${us(floor.median)} (${floor.range}); the gap: ${us(gap)} µs/req.\n\n`;
  md += '| guarantee taken out | target | µs/req (runs) | saving µs/req | share of the gap |\n| --- | --- | --- | --- | --- |\n';
  let text = `\nThe ledger (${entry.scenario.name}): part 5 ${us(part5.median)} µs/req (${part5.range}), the HTTP floor ${us(floor.median)} (${floor.range}), gap ${us(gap)}\n`;
  // The control: nothing taken out, so its "saving" is only how far one run's figure for the same code can stray.
  const again = of(CONTROL);
  const noise = part5.median - again.median;
  md += `| nothing (part 5 again, from an unpatched copy: the run's noise) | ${CONTROL} | ${us(again.median)} (${again.range}) | ${us(noise)} | ${share(noise)} |\n`;
  text += `  ${'nothing (part 5 again: the noise)'.padEnd(46)} ${us(again.median).padStart(6)} µs/req (${again.range.padStart(7)})  saving ${us(noise).padStart(5)}  ${share(noise).padStart(4)} of the gap\n`;
  let sum = 0;
  for (const patch of patches) {
    const label = `part 5 − ${patch.name}`;
    const row = of(label);
    const saving = part5.median - row.median;
    sum += saving;
    md += `| ${patch.guarantee} | ${label} | ${us(row.median)} (${row.range}) | ${us(saving)} | ${share(saving)} |\n`;
    text += `  ${patch.guarantee.padEnd(46)} ${us(row.median).padStart(6)} µs/req (${row.range.padStart(7)})  saving ${us(saving).padStart(5)}  ${share(saving).padStart(4)} of the gap\n`;
  }
  md += `| **all of them, summed** | | | **${us(sum)}** | **${share(sum)}** |\n`;
  md += `| unexplained (the gap less the sum) | | | ${us(gap - sum)} | ${share(gap - sum)} |\n`;
  text += `  ${'all of them, summed'.padEnd(46)} ${''.padStart(6)}        ${''.padStart(9)}  saving ${us(sum).padStart(5)}  ${share(sum).padStart(4)} of the gap\n`;
  text += `  ${'unexplained (the gap less the sum)'.padEnd(46)} ${''.padStart(6)}        ${''.padStart(9)}         ${us(gap - sum).padStart(5)}  ${share(gap - sum).padStart(4)} of the gap\n`;
  md += '\nWhat the flags cost: part 5 with the flag on, less part 5.\n\n| flag | µs/req (runs) | extra µs/req | share of the gap |\n| --- | --- | --- | --- |\n';
  for (const [flag, label] of [['--access-log FILE', ACCESS_LOG], ['--admin 127.0.0.1:0', ADMIN]] as const) {
    const row = of(label);
    const extra = row.median - part5.median;
    md += `| \`${flag}\` | ${us(row.median)} (${row.range}) | ${us(extra)} | ${share(extra)} |\n`;
    text += `  ${`+ ${flag}`.padEnd(46)} ${us(row.median).padStart(6)} µs/req (${row.range.padStart(7)})  extra  ${us(extra).padStart(5)}  ${share(extra).padStart(4)} of the gap\n`;
  }
  md += '\nWhat nginx does for each guarantee (from each patch\'s comment):\n\n';
  for (const patch of patches) md += `- **${patch.guarantee}** (\`bench/ledger/${patch.name}.patch\`): ${patch.nginx}\n`;
  md += '\nA saving no larger than the control\'s, or inside the runs\' spread, is noise. Savings need not add up to the gap: taking one guarantee out can change how V8 optimises the rest, and what part 5 pays for its structure (phases, the exchange and its helpers, the pool, the strategy, Node\'s stream machinery around its reads and writes) is in no patch.\n';
  writeFileSync(join(outDir, 'ledger.md'), md);
  return `${text}  (saving: part 5 less the build without it; the runs' spread is in brackets: a saving inside it is noise)\n\nwrote ${join(outDir, 'ledger.md')}`;
}
