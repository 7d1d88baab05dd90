// Builds of other commits, measured in the same interleaved run as today's code (`--at COMMIT`):
// each commit is checked out into a temporary git worktree, and its load balancer runs from there.
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, symlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

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
