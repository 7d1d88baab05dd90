// The load balancer's tuning steps, taken back (`npm run bench -- --tuning`). Each patch in bench/tuning/,
// N-NAME.patch, takes step N out of today's code. They form a chain, applied highest number first
// in a temporary copy of the part folder (step 3's patch fits today's code, step 2's fits the code
// with 3 taken back...), so one interleaved run measures the load balancer with every step taken back, then
// with each step restored in the chapter's order, then as it is. The chapter's tuning figures come from one
// run of today's code, not from old commits that differ from it in everything else as well.
import { readdirSync, readFileSync } from 'node:fs';
import { basename, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { applyPatch, copyPart } from './builds.ts';
import { proxyIn, type Target } from './targets.ts';

export const TUNING_DIR = fileURLToPath(new URL('tuning/', import.meta.url));

export const TUNING_USAGE = `  --tuning         part 5's tuning steps, one row each: part 5 with every step taken back
                   ("untuned"), then with each step restored in the chapter's order, then part 5,
                   beside the usual targets of --part 5, each round starting at another target.
                   Each row is a temporary copy of part 5 with the patches of bench/tuning/ for the
                   steps not yet restored applied, highest number first (git apply). A patch that
                   no longer applies is an error (exit 2). Combines with --at and --keep`;

export interface TuningStep {
  /** The file, e.g. .../bench/tuning/1-handlers.patch. */
  path: string;
  /** The chapter's order; the chain takes the highest number back first. */
  number: number;
  /** The file's name after its number ("handlers"): the row "+ step 1 handlers". */
  name: string;
  /** From its "Tuning step: N TITLE" line. */
  title: string;
  /** From its "Commit:" line: the commit that made the step. */
  commit: string;
}

/** One row of the run: a copy of part 5 with the steps after `kept` taken back. */
export interface TuningBuild {
  label: string;
  folder: string;
  /** Applied in this order, e.g. ["bench/tuning/3-heads.patch", "bench/tuning/2-deadlines.patch"]. */
  patches: string[];
  remove(): void;
}

const file = (step: TuningStep) => `bench/tuning/${basename(step.path)}`;

/** The steps, numbered 1 to N, each with its top comment read (git apply ignores it). */
export function tuningSteps(dir = TUNING_DIR): TuningStep[] {
  const steps = readdirSync(dir)
    .filter((name) => name.endsWith('.patch'))
    .map((name) => {
      const named = /^(\d+)-([a-z0-9-]+)\.patch$/.exec(name);
      if (!named) throw new Error(`bench/tuning/${name}: a tuning patch is named N-NAME.patch`);
      const text = readFileSync(join(dir, name), 'utf8');
      const comment = text.slice(0, Math.max(0, text.indexOf('diff --git')));
      const step = /^Tuning step: (\d+) (.+)$/m.exec(comment);
      const commit = /^Commit: (.+)$/m.exec(comment)?.[1];
      if (!step || Number(step[1]) !== Number(named[1]) || !/^Takes back: \S/m.test(comment) || !commit) {
        throw new Error(`bench/tuning/${name}: its comment must have the lines "Tuning step: ${Number(named[1])} TITLE", "Takes back: ..." and "Commit: ..."`);
      }
      return { path: join(dir, name), number: Number(named[1]), name: named[2]!, title: step[2]!, commit };
    })
    .sort((a, b) => a.number - b.number);
  // A gap or a duplicate would make "steps 1-N" and the chain's order lie.
  if (steps.some((s, i) => s.number !== i + 1)) {
    throw new Error(`bench/tuning/: the steps must be numbered 1 to ${steps.length}, one patch each; found ${steps.map((s) => s.number).join(', ')}`);
  }
  return steps;
}

/** The row's label: every step taken back, or steps 1 to `kept` restored. */
export function tuningLabel(steps: TuningStep[], kept: number): string {
  if (kept > 0) return `+ step ${kept} ${steps[kept - 1]!.name}`;
  return `untuned (${steps.length === 1 ? 'step 1' : `steps 1-${steps.length}`} taken back)`;
}

/** A copy of today's part 5 with steps kept+1..N taken back, highest first. Throws, leaving nothing behind, naming the patch that does not apply, with git's message. */
export function takenBack(root: string, steps: TuningStep[], kept: number): TuningBuild {
  const copy = copyPart(root, 'bench-tuning-');
  const chain = steps.slice(kept).reverse();
  for (const [i, step] of chain.entries()) {
    try {
      applyPatch(copy.folder, step.path);
    } catch (err) {
      copy.remove();
      const before = chain.slice(0, i).map((s) => s.number);
      const to = before.length === 0 ? "today's part 5" : `part 5 with step${before.length > 1 ? 's' : ''} ${before.join(', ')} taken back`;
      const git = ((err as { stderr?: string }).stderr ?? String(err)).trim().replace(/\s*\n\s*/g, '; ');
      throw new Error(`${file(step)} does not apply to ${to}: ${git}`);
    }
  }
  return { label: tuningLabel(steps, kept), folder: copy.folder, patches: chain.map(file), remove: copy.remove };
}

/**
 * For the harness: builds every row but today's part 5 (measured from its own folder), puts them
 * just before it in `targets` and says what each is. Their copies go when the harness exits. A
 * patch that does not apply is bad input: one error line, no copy left behind, exit 2.
 */
export function addTuningTargets(root: string, targets: Target[], dir = TUNING_DIR): TuningBuild[] {
  const builds: TuningBuild[] = [];
  const remove = () => builds.splice(0).forEach((b) => b.remove());
  try {
    const steps = tuningSteps(dir);
    for (let kept = 0; kept < steps.length; kept++) builds.push(takenBack(root, steps, kept));
  } catch (err) {
    remove();
    console.error(`error: --tuning: ${(err as Error).message}`);
    process.exit(2);
  }
  process.on('exit', remove);
  for (const b of builds) console.log(`${b.label}: part 5 with ${b.patches.join(', ')} applied`);
  const at = targets.findIndex((t) => t.name === 'part 5');
  targets.splice(at === -1 ? targets.length : at, 0, ...builds.map((b) => proxyIn(b.label, b.folder)));
  return [...builds];
}
