import { readdirSync } from 'node:fs';
import { defineConfig } from 'vitest/config';

// One vitest project per part folder (and one for docs/), so `--project part-02-event-loop`
// runs one part.
const parts = readdirSync(new URL('.', import.meta.url))
  .filter((name) => /^part-\d\d-/.test(name))
  .sort();

export default defineConfig({
  test: {
    // The JSON report is what .ci/run reads to print its "N passed, N failed" line.
    reporters: ['default', 'json'],
    outputFile: { json: 'results/vitest.json' },
    projects: [...parts, 'docs'].map((folder) => ({
      test: {
        name: folder,
        root: `./${folder}`,
        include: ['test/**/*.test.ts'],
        testTimeout: 30_000,
        hookTimeout: 30_000,
      },
    })),
  },
});
