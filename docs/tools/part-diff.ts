// Diffs between part folders: what each chapter changed in the proxy's code.
import { execFileSync } from 'node:child_process';
import { cpSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';

export const ROOT = fileURLToPath(new URL('../..', import.meta.url));

/** The part folders, in book order. */
export function partFolders(): string[] {
  return readdirSync(ROOT)
    .filter((name) => /^part-\d\d-/.test(name) && statSync(join(ROOT, name)).isDirectory())
    .sort();
}

/** Code files of a part: everything but the chapter, lockfiles and generated output. */
function codeFiles(part: string): string[] {
  const files: string[] = [];
  const walk = (dir: string) => {
    for (const entry of readdirSync(dir, { withFileTypes: true })) {
      if (['node_modules', 'results'].includes(entry.name)) continue;
      const path = join(dir, entry.name);
      if (entry.isDirectory()) walk(path);
      else if (/\.(ts|js|mjs|json|sh|conf|html)$/.test(entry.name) && !entry.name.endsWith('-lock.json')) {
        files.push(relative(join(ROOT, part), path));
      }
    }
  };
  walk(join(ROOT, part));
  return files.sort();
}

/** Copies a part's code into dir, without package.json's "name" line (it always differs). */
function snapshot(part: string, dir: string): void {
  for (const file of codeFiles(part)) {
    cpSync(join(ROOT, part, file), join(dir, file), { recursive: true });
    if (file === 'package.json') {
      const text = readFileSync(join(dir, file), 'utf8');
      writeFileSync(join(dir, file), text.replace(/^\s*"name": ".*",\n/m, ''));
    }
  }
}

/**
 * Unified diff from part `from` to part `to`, paths relative to the part folder (a/src/...),
 * files in reading order (src, then test, then bench, then the rest). `paths` keeps only files
 * at or under those paths (`src/http`, `test/fixture.ts`).
 */
export function partDiff(from: string, to: string, color = false, paths: string[] = []): string {
  const blocks = fileBlocks(rawDiff(from, to)).filter(({ file }) => paths.length === 0 || paths.some((p) => under(file, p)));
  blocks.sort((x, y) => rank(x.file) - rank(y.file) || x.file.localeCompare(y.file));
  const text = blocks.map((b) => b.text).join('');
  return color ? colorize(text) : text;
}

function rawDiff(from: string, to: string): string {
  const work = mkdtempSync(join(tmpdir(), 'part-diff-'));
  try {
    snapshot(from, join(work, 'a'));
    snapshot(to, join(work, 'b'));
    try {
      return execFileSync('git', ['diff', '--no-index', '--no-prefix', '--color=never', 'a', 'b'], {
        cwd: work,
        encoding: 'utf8',
        maxBuffer: 64 * 1024 * 1024,
      });
    } catch (err) {
      // git diff exits 1 when the trees differ, which is the normal case here.
      const failed = err as { status?: number; stdout?: string };
      if (failed.status !== 1 || failed.stdout === undefined) throw err;
      return failed.stdout;
    }
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
}

/** The diff cut into one block per file, with standard a/ and b/ headers and no index lines. */
function fileBlocks(diff: string): Array<{ file: string; text: string }> {
  const blocks: Array<{ file: string; text: string }> = [];
  for (const piece of diff.split(/^(?=diff --git )/m)) {
    const header = /^diff --git [ab]\/(\S+) [ab]\/(\S+)\n/.exec(piece);
    if (!header) continue;
    const file = header[2]!;
    // git names an added file "b/x b/x" and a deleted one "a/x a/x" when comparing two folders.
    const text = piece
      .replace(header[0], `diff --git a/${header[1]} b/${file}\n`)
      .replace(/^index [0-9a-f]+\.\.[0-9a-f]+.*\n/m, '');
    blocks.push({ file, text });
  }
  return blocks;
}

function under(file: string, path: string): boolean {
  const clean = path.replace(/\/+$/, '');
  return file === clean || file.startsWith(`${clean}/`);
}

/** src first, then tests, then benchmarks, then everything else. */
function rank(file: string): number {
  const order = ['src/', 'test/', 'bench/'];
  const at = order.findIndex((prefix) => file.startsWith(prefix));
  return at === -1 ? order.length : at;
}

function colorize(diff: string): string {
  const paint = (code: string, line: string) => `\x1b[${code}m${line}\x1b[0m`;
  return diff
    .split('\n')
    .map((line) => {
      if (/^(diff --git|---|\+\+\+|new file|deleted file)/.test(line)) return paint('1', line);
      if (line.startsWith('@@')) return paint('36', line);
      if (line.startsWith('+')) return paint('32', line);
      if (line.startsWith('-')) return paint('31', line);
      return line;
    })
    .join('\n');
}

/** Lines added and removed per file, from a unified diff. */
export function lineCounts(diff: string): Array<{ file: string; added: number; removed: number }> {
  const counts: Array<{ file: string; added: number; removed: number }> = [];
  let current: { file: string; added: number; removed: number } | undefined;
  for (const line of diff.split('\n')) {
    const header = /^diff --git [ab]\/(\S+) [ab]\/(\S+)/.exec(line);
    if (header) {
      current = { file: header[2] === header[1] ? header[1]! : `${header[1]} → ${header[2]}`, added: 0, removed: 0 };
      counts.push(current);
    } else if (current && line.startsWith('+') && !line.startsWith('+++')) current.added++;
    else if (current && line.startsWith('-') && !line.startsWith('---')) current.removed++;
  }
  return counts;
}
