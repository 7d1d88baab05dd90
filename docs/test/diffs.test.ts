import { readFileSync, existsSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { generatedDiffs } from '../tools/diffs.ts';
import { ROOT } from '../tools/part-diff.ts';

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
