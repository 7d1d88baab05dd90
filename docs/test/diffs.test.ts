import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, existsSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { generatedDiffs } from '../tools/diffs.ts';
import { ROOT, lineCounts, partDiff, partFiles, partFolders } from '../tools/part-diff.ts';
import { LIMIT, SECTIONS } from '../tools/sections.ts';
import { changedLines, chosenBy, cut, partUnits, unitsDiff } from '../tools/section-diff.ts';
import { lineUnits } from '../tools/units.ts';

describe('docs/diffs', () => {
  it('match the code in the part folders (run `npm run diffs` after changing a part)', () => {
    const stale: string[] = [];
    const files = generatedDiffs();
    for (const [path, text] of files) {
      const file = join(ROOT, path);
      if (!existsSync(file) || readFileSync(file, 'utf8') !== text) stale.push(path);
    }
    // and nothing left over from a section that was renamed or removed
    for (const name of readdirSync(join(ROOT, 'docs/diffs'))) if (!files.has(`docs/diffs/${name}`)) stale.push(`docs/diffs/${name} (left over)`);
    expect(stale, `stale diffs; run \`npm run diffs\` and commit: ${stale.join(', ')}`).toEqual([]);
  });

  it('use standard a/ and b/ headers, src before test', () => {
    const diff = partDiff('part-03-multi-backend', 'part-04-keepalive');
    const files = [...diff.matchAll(/^diff --git a\/(\S+) b\/(\S+)$/gm)].map((m) => m[2]!);
    expect(files.length).toBe((diff.match(/^diff --git /gm) ?? []).length);
    expect(files.findIndex((f) => f.startsWith('test/'))).toBeGreaterThan(files.findLastIndex((f) => f.startsWith('src/')));
  });
});

// Two part-like folders where a file moved into a layer folder and one method changed.
const work = mkdtempSync(join(tmpdir(), 'diffs-test-'));
afterAll(() => rmSync(work, { recursive: true, force: true }));
const write = (path: string, text: string) => {
  mkdirSync(dirname(join(work, path)), { recursive: true });
  writeFileSync(join(work, path), text);
};
const exchange = (finish: string) =>
  [
    "import { log } from './log.ts';",
    '',
    '/** One request. */',
    'export class Exchange {',
    '  phase = 1;',
    ...Array.from({ length: 12 }, (_, i) => `  step${i}(): number {\n    return ${i};\n  }\n`),
    '  finish(): void {',
    `    log(${finish});`,
    '  }',
    '}',
    '',
  ].join('\n');
write('old/src/exchange.ts', exchange("'done'"));
write('new/src/core/exchange.ts', exchange("'finished'"));
write('old/src/gone.ts', 'export const GONE = 1;\n');
// Moved and rewritten past git's 50% similarity: still the same file.
write('old/src/proxy.ts', ['export function start(): void {', '  listenOnTheGivenPortAndAddress();', '  acceptEveryClientThatConnects();', '}', ''].join('\n'));
write('new/src/process/proxy.ts', ['export function start(): void {', '  routeEachRequestByItsHostHeader();', '  balanceOverTheHealthyBackends();', '}', ''].join('\n'));
write('new/src/fresh.json', '{ "fresh": true }\n');

describe('a file that moves between parts', () => {
  const from = join(work, 'old');
  const to = join(work, 'new');

  it('shows as a rename with its changes, not a deletion and a new file', () => {
    const diff = partDiff(from, to);
    expect(diff).toContain('diff --git a/src/exchange.ts b/src/core/exchange.ts\n');
    expect(diff).toMatch(/^similarity index \d+%\nrename from src\/exchange.ts\nrename to src\/core\/exchange.ts\n--- a\/src\/exchange.ts\n\+\+\+ b\/src\/core\/exchange.ts\n/m);
    expect(lineCounts(diff)).toEqual([
      { file: 'src/exchange.ts → src/core/exchange.ts', added: 1, removed: 1 },
      { file: 'src/fresh.json', added: 1, removed: 0 },
      { file: 'src/gone.ts', added: 0, removed: 1 },
      { file: 'src/proxy.ts → src/process/proxy.ts', added: 2, removed: 2 },
    ]);
  });

  it('shows as a rename even when it was rewritten past git\'s similarity threshold (same name, one of each)', () => {
    const diff = partDiff(from, to, false, ['src/process']);
    expect(diff).toMatch(/^diff --git a\/src\/proxy.ts b\/src\/process\/proxy.ts\nsimilarity index \d+%\nrename from src\/proxy.ts\nrename to src\/process\/proxy.ts\n/);
    expect(diff).not.toMatch(/^(new|deleted) file mode/m);
  });

  it('is found by a path on either side', () => {
    expect(partDiff(from, to, false, ['src/exchange.ts'])).toContain('rename to src/core/exchange.ts');
    expect(partDiff(from, to, false, ['src/core'])).toContain('rename from src/exchange.ts');
  });

  it('keeps its units, named under the new path', () => {
    const units = partUnits(from, to).units.map((u) => `${u.key} +${u.added} -${u.removed}`);
    expect(units).toEqual([
      'src/core/exchange.ts › class Exchange › finish() +1 -1',
      'src/fresh.json +1 -0',
      'src/gone.ts › const GONE +0 -1',
      'src/process/proxy.ts › function start() +2 -2',
    ]);
  });

  it("shows a unit's change in hunks that name it, with the rename header and a few lines of context", () => {
    const part = partUnits(from, to);
    const text = unitsDiff(part, new Set(['src/core/exchange.ts › class Exchange › finish()']));
    expect(text).toBe(
      [
        'diff --git a/src/exchange.ts b/src/core/exchange.ts',
        'similarity index 96%',
        'rename from src/exchange.ts',
        'rename to src/core/exchange.ts',
        '--- a/src/exchange.ts',
        '+++ b/src/core/exchange.ts',
        '@@ -52,6 +52,6 @@ class Exchange › finish()',
        '   }',
        ' ',
        '   finish(): void {',
        "-    log('done');",
        "+    log('finished');",
        '   }',
        ' }',
        '',
      ].join('\n'),
    );
  });
});

describe('units', () => {
  it('name declarations, class members and test calls by the parser, blank lines going with what follows', () => {
    const text = [
      '// A test file.', // 1
      "import { describe, it } from 'vitest';", // 2
      '', // 3
      'function helper(): number {', // 4
      '  return 1;', // 5
      '}', // 6
      '', // 7
      "describe('pool', () => {", // 8
      '  const size = 2;', // 9
      '', // 10
      "  it('reuses', () => {", // 11
      '    helper();', // 12
      '  });', // 13
      '  for (const n of [1, 2]) {', // 14
      '    test(`takes ${n}`, () => {});', // 15
      '  }', // 16
      '});', // 17
      'class Pool {', // 18
      '  private idle = 0;', // 19
      '  get size(): number { return this.idle; }', // 20
      '  take = () => this.idle--;', // 21
      '}', // 22
    ].join('\n');
    expect(lineUnits('test/pool.test.ts', text).slice(1)).toEqual([
      'header comment',
      'imports › vitest',
      'function helper()',
      'function helper()',
      'function helper()',
      'function helper()',
      "describe('pool')",
      "describe('pool')",
      "describe('pool') › const size",
      "describe('pool') › it('reuses')",
      "describe('pool') › it('reuses')",
      "describe('pool') › it('reuses')",
      "describe('pool') › it('reuses')",
      "describe('pool') › for (const n of [1, 2]) {",
      "describe('pool') › for (const n of [1, 2]) { › test(`takes ${n}`)",
      "describe('pool') › for (const n of [1, 2]) {",
      "describe('pool')",
      'class Pool',
      'class Pool › idle',
      'class Pool › get size()',
      'class Pool › take()',
      'class Pool',
    ]);
    expect(lineUnits('src/page.html', '<p>\n</p>\n').slice(1)).toEqual(['', '', '']);
  });
});

describe('chapter sections', () => {
  const parts = partFolders();
  const chapters = Object.entries(SECTIONS).map(([to, sections]) => {
    const from = parts[parts.indexOf(to) - 1]!;
    const units = partUnits(from, to);
    return { from, to, sections, units, cut: cut(units, sections) };
  });

  it('give every changed unit of a part to exactly one section', () => {
    for (const { to, units, cut: c } of chapters) {
      expect(units.units.length).toBeGreaterThan(0);
      expect(c.unassigned.map((u) => u.key), `${to}: units no section owns`).toEqual([]);
      expect(c.twice.map(({ unit, sections }) => `${unit.key} in ${sections.join('; ')}`), `${to}: units two sections claim`).toEqual([]);
      expect(c.unused.map(({ section, selector }) => `${section}: ${selector}`), `${to}: selectors that own nothing`).toEqual([]);
    }
  });

  it('add up to the whole part diff: every changed line in exactly one section diff', () => {
    for (const { from, to, units, cut: c } of chapters) {
      const whole = changedLines(partFiles(from, to)).sort();
      const sections = c.sections.flatMap((s) => changedLines(unitsDiff(units, new Set(s.units.map((u) => u.key))))).sort();
      expect(sections.length, to).toBe(whole.length);
      expect(sections, to).toEqual(whole);
    }
  });

  it(`keep each section within ${LIMIT} changed lines, or say why not`, () => {
    for (const { cut: c } of chapters) {
      expect(c.overLimit).toEqual([]);
      expect(c.needlessException).toEqual([]);
    }
  });
});

describe('npm run diff with sections', () => {
  it('--section 2b is one sitting, --section 2 every sitting of 4.2', () => {
    const ids = (wanted: string) => SECTIONS['part-04-keepalive']!.filter((s) => chosenBy(s, wanted)).map((s) => s.id);
    expect(ids('2b')).toEqual(['2b-exchange']);
    expect(ids('2')).toEqual(['2a-connection', '2b-exchange', '2c-response']);
    expect(ids('3')).toEqual(['3-failures']);
    expect(ids('9')).toEqual([]);
  });

  it('refuses a section that does not exist, naming the ones that do (exit 2)', () => {
    const bad = spawnSync(process.execPath, ['--import', 'tsx', 'docs/tools/diffs.ts', 'show', '4', '5', '--section', '9'], { cwd: ROOT, encoding: 'utf8' });
    expect(bad.status).toBe(2);
    expect(bad.stderr).toContain('no section "9" in part-05-benchmarks (have 1a, 1b');
    expect(bad.stdout).toBe('');
  });
});
