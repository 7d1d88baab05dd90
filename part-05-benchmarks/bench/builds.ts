// Builds of other commits, measured in the same interleaved run as today's code (`--at COMMIT`):
// each commit is checked out into a temporary git worktree, and its load balancer runs from there.
// And builds of today's load balancer with patches applied (`--ledger`, `--tuning`), in a temporary copy.
import { execFileSync } from 'node:child_process';
import { cpSync, mkdtempSync, rmSync, symlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, dirname, join } from 'node:path';

export interface Build {
  /** The table's label: "@" and the short hash. */
  label: string;
  commit: string;
  subject: string;
  /** The build's part 5 folder. */
  folder: string;
  remove(): void;
}

/** Checks `commit` out beside the repository at `root`; throws with git's message if it cannot. */
export function checkout(root: string, commit: string): Build {
  const git = (...args: string[]) => execFileSync('git', ['-C', root, ...args], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] }).trim();
  const [hash, subject] = git('log', '-1', '--format=%h%x00%s', commit).split('\0') as [string, string];
  const dir = join(mkdtempSync(join(tmpdir(), 'bench-at-')), hash);
  git('worktree', 'add', '--detach', '--quiet', dir, commit);
  // The build uses the repository's installed packages (tsx, undici...), as the parts do.
  symlinkSync(join(root, 'node_modules'), join(dir, 'node_modules'));
  return {
    label: `@${hash}`,
    commit: hash,
    subject,
    folder: join(dir, 'part-05-benchmarks'),
    remove: () => {
      git('worktree', 'remove', '--force', dir);
      rmSync(join(dir, '..'), { recursive: true, force: true });
    },
  };
}

/** A copy of the part 5 folder at `root` (without node_modules and results) in a temporary folder, beside a link to the repository's packages. */
export function copyPart(root: string, prefix = 'bench-ledger-'): { folder: string; remove(): void } {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  const folder = join(dir, 'part-05-benchmarks');
  const skip = new Set(['node_modules', 'results'].map((name) => join(root, 'part-05-benchmarks', name)));
  cpSync(join(root, 'part-05-benchmarks'), folder, { recursive: true, filter: (source) => !skip.has(source) });
  symlinkSync(join(root, 'node_modules'), join(dir, 'node_modules'));
  return { folder, remove: () => rmSync(dir, { recursive: true, force: true }) };
}

/** `git apply` of a patch (paths a/src/... relative to the part folder) in `folder`; throws with git's message if it does not apply. */
export function applyPatch(folder: string, patch: string, check = false): void {
  // The ceiling keeps git from finding a repository above the copy (it would read paths from that repository's root).
  const env = { ...process.env, GIT_CEILING_DIRECTORIES: dirname(folder) };
  execFileSync('git', ['apply', '-p1', ...(check ? ['--check'] : []), patch], { cwd: folder, env, encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
}

/** Today's part 5 with one ledger patch applied, labelled "part 5 − NAME" after the patch file. */
export function patched(root: string, patch: string): Build {
  const copy = copyPart(root);
  try {
    applyPatch(copy.folder, patch);
  } catch (err) {
    copy.remove();
    throw err;
  }
  const name = basename(patch, '.patch');
  return { label: `part 5 − ${name}`, commit: 'working tree', subject: patch, folder: copy.folder, remove: copy.remove };
}
