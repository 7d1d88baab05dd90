// Diffs between part folders: what each chapter changed in the proxy's code.
import { execFileSync } from 'node:child_process';
import { cpSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, isAbsolute, join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { type FileDiff, colorize, parseDiff, renderFile } from './unified-diff.ts';

export { type DiffLine, type FileDiff, type Hunk, colorize, lineCounts, parseDiff, renderFile } from './unified-diff.ts';

export const ROOT = fileURLToPath(new URL('../..', import.meta.url));

/** The part folders, in book order. */
export function partFolders(): string[] {
  return readdirSync(ROOT)
    .filter((name) => /^part-\d\d-/.test(name) && statSync(join(ROOT, name)).isDirectory())
    .sort();
}

/** A part folder's name (relative to the repository root) or any folder, as an absolute path. */
export function folderOf(part: string): string {
  return isAbsolute(part) ? part : join(ROOT, part);
}

/** Code files of a folder: everything but the chapter, lockfiles and generated output. */
function codeFiles(folder: string): string[] {
  const files: string[] = [];
  const walk = (dir: string) => {
    for (const entry of readdirSync(dir, { withFileTypes: true })) {
      if (['node_modules', 'results'].includes(entry.name)) continue;
      const path = join(dir, entry.name);
      if (entry.isDirectory()) walk(path);
      else if (/\.(ts|js|mjs|json|sh|conf|html|patch)$/.test(entry.name) && !entry.name.endsWith('-lock.json')) {
        files.push(relative(folder, path));
      }
    }
  };
  walk(folder);
  return files.sort();
}

/** Copies a part's code into dir, without package.json's "name" line (it always differs). */
function snapshot(folder: string, dir: string): void {
  for (const file of codeFiles(folder)) {
    cpSync(join(folder, file), join(dir, file), { recursive: true });
    if (file === 'package.json') {
      const text = readFileSync(join(dir, file), 'utf8');
      writeFileSync(join(dir, file), text.replace(/^\s*"name": ".*",\n/m, ''));
    }
  }
}

/**
 * The diff from part `from` to part `to` (folder names under the repository root, or absolute
 * folders), one entry per file, in reading order: src, then test, then bench, then the rest.
 * A file that moved shows as a rename with its changes (git's rename detection, -M), never as
 * a deletion plus a new file.
 */
export function partFiles(from: string, to: string): FileDiff[] {
  const files = parseDiff(rawDiff(folderOf(from), folderOf(to)));
  return files.sort((x, y) => rank(x.file) - rank(y.file) || x.file.localeCompare(y.file));
}

/**
 * Unified diff from part `from` to part `to`, paths relative to the part folder (a/src/...),
 * files in reading order. `paths` keeps only files at or under those paths (`src/http`,
 * `test/fixture.ts`), on either side of a rename.
 */
export function partDiff(from: string, to: string, color = false, paths: string[] = []): string {
  const files = partFiles(from, to).filter(
    (f) => paths.length === 0 || paths.some((p) => [f.oldPath, f.newPath].some((side) => side !== undefined && under(side, p))),
  );
  const text = files.map((f) => renderFile(f)).join('');
  return color ? colorize(text) : text;
}

const rawCache = new Map<string, string>();

function rawDiff(from: string, to: string): string {
  const key = `${from}\n${to}`;
  const cached = rawCache.get(key);
  if (cached !== undefined) return cached;
  const work = mkdtempSync(join(tmpdir(), 'part-diff-'));
  try {
    snapshot(from, join(work, 'a'));
    snapshot(to, join(work, 'b'));
    // -M: a moved file is a rename with its changes; git decides by content similarity (50%).
    let out = gitDiff(work, ['-M', 'a', 'b']);
    // A file that moved and was also rewritten past git's threshold (part 3's proxy.ts moving
    // into a layer folder of part 4, say) would be a deletion plus a new file. One deleted and
    // one added file of the same name are the same file moved: diff them as a rename.
    const blocks = out.split(/^(?=diff --git )/m).filter((b) => b !== '');
    const files = blocks.map((b) => parseDiff(b)[0]!);
    const byName = (side: 'old' | 'new') => {
      const names = new Map<string, number[]>();
      files.forEach((f, i) => {
        const path = side === 'old' ? (f.newPath === undefined ? f.oldPath : undefined) : f.oldPath === undefined ? f.newPath : undefined;
        if (path !== undefined) names.set(basename(path), [...(names.get(basename(path)) ?? []), i]);
      });
      return names;
    };
    const deleted = byName('old');
    const added = byName('new');
    const replaced = new Map<number, string>();
    for (const [name, [gone, ...moreGone]] of deleted) {
      const [come, ...moreCome] = added.get(name) ?? [];
      if (gone === undefined || come === undefined || moreGone.length > 0 || moreCome.length > 0) continue;
      const oldPath = files[gone]!.oldPath!;
      const newPath = files[come]!.newPath!;
      const text = gitDiff(work, [`a/${oldPath}`, `b/${newPath}`]);
      if (text.search(/^@@/m) === -1) continue; // not text
      const hunks = text.slice(text.search(/^@@/m));
      const oldLines = readFileSync(join(work, 'a', oldPath), 'utf8').split('\n').length - 1;
      const newLines = readFileSync(join(work, 'b', newPath), 'utf8').split('\n').length - 1;
      const removed = (hunks.match(/^-/gm) ?? []).length;
      const similarity = Math.round((100 * (oldLines - removed)) / Math.max(oldLines, newLines, 1));
      replaced.set(gone, `diff --git a/${oldPath} b/${newPath}\nsimilarity index ${similarity}%\nrename from ${oldPath}\nrename to ${newPath}\n`
        + `--- a/${oldPath}\n+++ b/${newPath}\n${hunks}`);
      replaced.set(come, '');
    }
    if (replaced.size > 0) out = blocks.map((b, i) => replaced.get(i) ?? b).join('');
    // Only within one process run: the part folders do not change while a command runs.
    rawCache.set(key, out);
    return out;
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
}

/** git diff --no-index in the snapshot folder (exit 1 means "they differ", the normal case). */
function gitDiff(cwd: string, args: string[]): string {
  try {
    return execFileSync('git', ['diff', '--no-index', '--no-prefix', '--color=never', ...args], { cwd, encoding: 'utf8', maxBuffer: 64 * 1024 * 1024 });
  } catch (err) {
    const failed = err as { status?: number; stdout?: string };
    if (failed.status !== 1 || failed.stdout === undefined) throw err;
    return failed.stdout;
  }
}

export function under(file: string, path: string): boolean {
  const clean = path.replace(/\/+$/, '');
  return file === clean || file.startsWith(`${clean}/`);
}

/** src first, then tests, then benchmarks, then everything else. */
export function rank(file: string): number {
  const order = ['src/', 'test/', 'bench/'];
  const at = order.findIndex((prefix) => file.startsWith(prefix));
  return at === -1 ? order.length : at;
}
