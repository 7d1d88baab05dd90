import { readFileSync, existsSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { generatedDiffs } from '../tools/diffs.ts';
import { ROOT, lineCounts, partDiff, partFolders } from '../tools/part-diff.ts';
import { SECTIONS } from '../tools/sections.ts';

describe('docs/diffs', () => {
  it('match the code in the part folders (run `npm run diffs` after changing a part)', () => {
    const stale: string[] = [];
    for (const [path, text] of generatedDiffs()) {
      const file = join(ROOT, path);
      if (!existsSync(file) || readFileSync(file, 'utf8') !== text) stale.push(path);
    }
    expect(stale, `stale diffs; run \`npm run diffs\` and commit: ${stale.join(', ')}`).toEqual([]);
  });
});

describe('chapter sections', () => {
  it('put every file a sectioned chapter changes in exactly one section', () => {
    const parts = partFolders();
    for (const [to, sections] of Object.entries(SECTIONS)) {
      const from = parts[parts.indexOf(to) - 1]!;
      const changed = lineCounts(partDiff(from, to)).map(({ file }) => file);
      expect(changed.length).toBeGreaterThan(0);
      for (const file of changed) {
        const homes = sections.filter((section) => section.paths.some((path) => file === path || file.startsWith(`${path}/`)));
        expect(homes.map((home) => home.id), `${to}: ${file}`).toHaveLength(1);
      }
    }
  });

  it('use standard a/ and b/ headers, src before test', () => {
    const diff = partDiff('part-03-multi-backend', 'part-04-keepalive');
    const files = [...diff.matchAll(/^diff --git a\/(\S+) b\/(\S+)$/gm)].map((m) => m[2]!);
    expect(files.length).toBe((diff.match(/^diff --git /gm) ?? []).length);
    expect(files.findIndex((f) => f.startsWith('test/'))).toBeGreaterThan(files.findLastIndex((f) => f.startsWith('src/')));
  });
});
