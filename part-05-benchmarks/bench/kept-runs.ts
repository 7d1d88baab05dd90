// Named runs the book keeps: `--keep NAME` writes the run's results to docs/runs/NAME.json, and a
// chapter that quotes a table from it marks the table with `<!-- run: NAME, scenario: KEY -->`.
// docs/test/runs.test.ts renders that scenario's table from the kept file and compares, so every
// figure a chapter quotes comes from a run it names.
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { scenarioTable, type Results } from './report.ts';

/** Where kept runs live, relative to the repository root. */
export const RUNS_DIR = 'docs/runs';

/** A run's name: lower-case letters, digits and dashes (it becomes a file name). */
export function checkRunName(name: string): string | undefined {
  return /^[a-z0-9][a-z0-9-]{0,60}$/.test(name) ? undefined : `--keep NAME: lower-case letters, digits and dashes, got "${name}"`;
}

export function keepRun(root: string, name: string, results: Results): string {
  const dir = join(root, RUNS_DIR);
  mkdirSync(dir, { recursive: true });
  const path = join(dir, `${name}.json`);
  writeFileSync(path, `${JSON.stringify(results, null, 1)}\n`);
  return path;
}

export function readRun(root: string, name: string): Results {
  return JSON.parse(readFileSync(join(root, RUNS_DIR, `${name}.json`), 'utf8')) as Results;
}

/** The table a chapter may quote: one scenario of a kept run, as the report renders it. */
export function keptTable(results: Results, scenarioKey: string): string | undefined {
  const entry = results.scenarios.find((e) => e.scenario.key === scenarioKey);
  return entry ? scenarioTable(entry) : undefined;
}
