// Every benchmark table a chapter quotes comes from a run the book keeps. A quoted table is marked
// `<!-- run: NAME, scenario: KEY -->`; the table under it must be exactly what the harness renders
// for that scenario of docs/runs/NAME.json (`npm run bench -- ... --keep NAME` wrote it).
import { existsSync, readFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import { describe, expect, it } from 'vitest';
import { ROOT } from '../tools/part-diff.ts';
import { markdownFiles } from '../tools/book-files.ts';
import { keptTable, readRun, RUNS_DIR } from '../../part-05-benchmarks/bench/kept-runs.ts';

interface Quote {
  where: string;
  run: string;
  scenario: string;
  table: string;
}

const MARKER = /^<!-- run: ([a-z0-9-]+), scenario: ([a-z0-9]+) -->$/;

/** The marked tables of one markdown text. */
export function quotes(file: string, text: string): Quote[] {
  const lines = text.split('\n');
  const found: Quote[] = [];
  lines.forEach((line, i) => {
    const m = MARKER.exec(line.trim());
    if (!m) return;
    let at = i + 1;
    while (lines[at]?.trim() === '') at++;
    const table: string[] = [];
    while (lines[at]?.startsWith('|')) table.push(lines[at++]!);
    found.push({ where: `${file}:${i + 1}`, run: m[1]!, scenario: m[2]!, table: table.length ? `${table.join('\n')}\n` : '' });
  });
  return found;
}

/** What is wrong with one quote: a missing run or scenario, or a table that differs from the run's. */
export function problem(q: Quote): string | undefined {
  if (!existsSync(join(ROOT, RUNS_DIR, `${q.run}.json`))) return `${q.where}: no kept run ${RUNS_DIR}/${q.run}.json`;
  const expected = keptTable(readRun(ROOT, q.run), q.scenario);
  if (expected === undefined) return `${q.where}: run ${q.run} has no scenario "${q.scenario}"`;
  if (q.table !== expected) return `${q.where}: the table differs from run ${q.run} (${q.scenario}); paste it again:\n${expected}`;
  return undefined;
}

const all = markdownFiles().flatMap((file) => quotes(relative(ROOT, file), readFileSync(file, 'utf8')));

describe('docs: quoted benchmark tables', () => {
  it('each come from a kept run, figure for figure', () => {
    expect(all.length).toBeGreaterThan(0);
    expect(all.map(problem).filter(Boolean)).toEqual([]);
  });

  it('catch a figure changed by hand', () => {
    const [first] = all;
    if (!first) throw new Error('no quoted table to plant a wrong figure in');
    const planted = { ...first, table: first.table.replace(/\| (\d+) \|/, (_, n: string) => `| ${Number(n) + 1} |`) };
    expect(planted.table).not.toBe(first.table);
    expect(problem(planted)).toMatch(/differs from run/);
  });
});
