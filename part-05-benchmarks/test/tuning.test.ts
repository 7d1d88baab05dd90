// The tuning steps as patches (`npm run bench -- --tuning`): each takes one step back out of
// today's code, in a chain applied highest number first. A change to the code they touch must not
// silently break them, and what they leave must still be a working proxy. No load is measured.
import http from 'node:http';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { copyFileSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterEach, describe, expect, it } from 'vitest';
import { applyPatch, copyPart } from '../bench/builds.ts';
import { proxyIn } from '../bench/targets.ts';
import { takenBack, tuningLabel, tuningSteps } from '../bench/tuning.ts';
import { listen, request, shut } from './helpers.ts';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const RUN = fileURLToPath(new URL('../bench/run.ts', import.meta.url));

const cleanups: Array<() => void | Promise<void>> = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

/** A folder with copies of today's patches, for a test to change or add to. */
function patchesCopy(): string {
  const dir = mkdtempSync(join(tmpdir(), 'tuning-patches-'));
  cleanups.push(() => rmSync(dir, { recursive: true, force: true }));
  for (const step of tuningSteps()) copyFileSync(step.path, join(dir, basename(step.path)));
  return dir;
}

const copiesLeft = () => readdirSync(tmpdir()).filter((name) => name.startsWith('bench-tuning-')).length;

describe('the tuning steps, taken back', () => {
  it('are the chapter\'s steps, numbered from 1, each saying what it takes back and which commit made it', () => {
    const steps = tuningSteps();
    expect(steps.slice(0, 3).map((s) => `${s.number}-${s.name}`)).toEqual(['1-handlers', '2-deadlines', '3-heads']);
    for (const step of steps) {
      expect(step.commit, step.name).toMatch(/^[0-9a-f]{7,40}\b/);
      expect(readFileSync(step.path, 'utf8'), step.name).toMatch(/^Takes back: \S/m);
    }
    expect(tuningLabel(steps, 0)).toBe(`untuned (steps 1-${steps.length} taken back)`);
    expect(tuningLabel(steps, 1)).toBe('+ step 1 handlers');
  });

  it('apply as a chain, highest number first, each to the code the one before it left (git apply, stage by stage)', () => {
    const copy = copyPart(ROOT, 'bench-tuning-');
    cleanups.push(copy.remove);
    for (const step of tuningSteps().reverse()) {
      expect(() => applyPatch(copy.folder, step.path), step.name).not.toThrow();
      // Applied for real, not only checked: it cannot apply twice, and the next patch fits what it left.
      expect(() => applyPatch(copy.folder, step.path, true), `${step.name} again`).toThrow();
    }
  });

  it('refuses a patch whose context no longer matches, naming it, with git\'s message, and leaves no copy behind', () => {
    const dir = patchesCopy();
    // A context line the code does not have: what a later change to the code does to a patch.
    const path = join(dir, '2-deadlines.patch');
    writeFileSync(path, readFileSync(path, 'utf8').replace(/^ (.+)$/m, ' $1 // changed since'));
    const left = copiesLeft();
    expect(() => takenBack(ROOT, tuningSteps(dir), 0)).toThrow(
      /^bench\/tuning\/2-deadlines\.patch does not apply to part 5 with step(s [\d, ]+)? 3 taken back: .*(patch does not apply|patch failed)/,
    );
    expect(copiesLeft()).toBe(left);
  });

  it('take a later step, N+1-NAME.patch, into the chain as it is, first', () => {
    const dir = patchesCopy();
    const n = tuningSteps().length + 1;
    // A header as every step has, and a change that fits any code: a new file.
    const header = `Tuning step: ${n} a later step\nTakes back: a file.\nCommit: 0123456\n`;
    writeFileSync(join(dir, `${n}-later.patch`), `${header}diff --git a/src/later.txt b/src/later.txt\nnew file mode 100644\n--- /dev/null\n+++ b/src/later.txt\n@@ -0,0 +1 @@\n+taken back\n`);
    const steps = tuningSteps(dir);
    const untuned = takenBack(ROOT, steps, 0);
    cleanups.push(untuned.remove);
    expect(untuned.label).toBe(`untuned (steps 1-${n} taken back)`);
    expect(untuned.patches[0]).toBe(`bench/tuning/${n}-later.patch`);
    expect(readFileSync(join(untuned.folder, 'src/later.txt'), 'utf8')).toBe('taken back\n');
    const restored = takenBack(ROOT, steps, n - 1);
    cleanups.push(restored.remove);
    expect([restored.label, restored.patches]).toEqual([`+ step ${n - 1} ${steps[n - 2]!.name}`, [`bench/tuning/${n}-later.patch`]]);
  });

  it('leave a working proxy: the untuned copy, started as the harness starts it, answers 200', async () => {
    const build = takenBack(ROOT, tuningSteps(), 0);
    cleanups.push(build.remove);
    const { server, port } = await listen(http.createServer((_req, res) => res.end('from the backend')));
    cleanups.push(() => shut(server));
    const proxy = await proxyIn(build.label, build.folder).launch([`127.0.0.1:${port}`]);
    cleanups.push(() => proxy.stop());
    const reply = await request(proxy.port, { path: '/untuned' });
    expect([reply.status, reply.body.toString()]).toEqual([200, 'from the backend']);
  });
});

describe('npm run bench -- --tuning: arguments', () => {
  const bench = async (...args: string[]) => {
    const child = spawn(process.execPath, ['--import', 'tsx', RUN, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
    let [stdout, stderr] = ['', ''];
    child.stdout.on('data', (chunk: Buffer) => (stdout += chunk));
    child.stderr.on('data', (chunk: Buffer) => (stderr += chunk));
    const [status] = (await once(child, 'close')) as [number | null];
    return { status, stdout, stderr };
  };

  it('--help documents --tuning and exits 0 before building or measuring anything', async () => {
    const run = await bench('--tuning', '--help');
    expect(run.status, run.stderr).toBe(0);
    expect(run.stdout).toMatch(/--tuning\s+part 5's tuning steps/);
    expect(run.stdout).not.toMatch(/targets:|taken back\):/);
  });

  it('refuses --tuning with --publish, --ledger or a part other than 5 (exit 2, one error line)', async () => {
    const combinations = [['--publish'], ['--ledger'], ['--part', '3']];
    const runs = await Promise.all(combinations.map((args) => bench('--tuning', ...args)));
    for (const [i, run] of runs.entries()) {
      const args = combinations[i]!.join(' ');
      expect(run.status, args).toBe(2);
      expect(run.stderr, args).toMatch(/^error: --tuning [^\n]*\n$/);
      expect(run.stdout, args).toBe('');
    }
  });
});
