// Every benchmark table a chapter quotes comes from a run the book keeps. A quoted table is marked
// `<!-- run: NAME, scenario: KEY -->`; the table under it must be exactly what the harness renders
// for that scenario of docs/runs/NAME.json (`npm run bench -- ... --keep NAME` wrote it).
// A paragraph that quotes figures in prose is marked `<!-- run: NAME -->`: each "N req/s" and
// "N µs" in it must be a figure of that run's tables.
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

const PROSE_MARKER = /^<!-- run: ([a-z0-9-]+) -->$/;
/** A figure with its unit: "6,764 req/s", "42 µs", and the first of "16,706 req/s and 42 µs" pairs written "16,706 req/s". */
const FIGURE = /(\d[\d,]*(?:\.\d+)?) (req\/s|µs)/g;

interface ProseQuote {
  where: string;
  run: string;
  text: string;
}

/** The marked paragraphs of one markdown text: the lines after the marker, up to a blank line. */
export function proseQuotes(file: string, text: string): ProseQuote[] {
  const lines = text.split('\n');
  const found: ProseQuote[] = [];
  lines.forEach((line, i) => {
    const m = PROSE_MARKER.exec(line.trim());
    if (!m) return;
    const paragraph: string[] = [];
    for (let at = i + 1; lines[at]?.trim(); at++) paragraph.push(lines[at]!);
    found.push({ where: `${file}:${i + 1}`, run: m[1]!, text: paragraph.join(' ') });
  });
  return found;
}

/** Every req/s and µs/req figure of a run's tables, as the tables print them. */
function runFigures(run: string): { rps: Set<string>; micros: Set<string> } {
  const rps = new Set<string>();
  const micros = new Set<string>();
  for (const entry of readRun(ROOT, run).scenarios) {
    for (const row of (keptTable(readRun(ROOT, run), entry.scenario.key) ?? '').split('\n').slice(2)) {
      const cells = row.split('|').map((c) => c.trim());
      if (cells.length < 8) continue;
      rps.add(cells[2]!.split(' ')[0]!);
      micros.add(cells[6]!);
    }
  }
  return { rps, micros };
}

/** What is wrong with a marked paragraph: no run, no figure, or a figure the run does not have. */
export function proseProblem(q: ProseQuote): string | undefined {
  if (!existsSync(join(ROOT, RUNS_DIR, `${q.run}.json`))) return `${q.where}: no kept run ${RUNS_DIR}/${q.run}.json`;
  const figures = [...q.text.matchAll(FIGURE)];
  if (figures.length === 0) return `${q.where}: the marked paragraph quotes no "N req/s" or "N µs" figure`;
  const { rps, micros } = runFigures(q.run);
  const wrong = figures.filter(([, n, unit]) => !(unit === 'req/s' ? rps : micros).has(n!)).map(([f]) => f);
  return wrong.length ? `${q.where}: not in run ${q.run}: ${wrong.join(', ')}` : undefined;
}

const all = markdownFiles().flatMap((file) => quotes(relative(ROOT, file), readFileSync(file, 'utf8')));

const prose = markdownFiles().flatMap((file) => proseQuotes(relative(ROOT, file), readFileSync(file, 'utf8')));

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

  it('and figures quoted in prose each come from the kept run the paragraph names', () => {
    expect(prose.length).toBeGreaterThan(0);
    expect(prose.map(proseProblem).filter(Boolean)).toEqual([]);
  });

  it('catch a prose figure changed by hand', () => {
    const [first] = prose;
    if (!first) throw new Error('no marked paragraph to plant a wrong figure in');
    const planted = { ...first, text: first.text.replace(FIGURE, (_, n: string, unit: string) => `${n}1 ${unit}`) };
    expect(planted.text).not.toBe(first.text);
    expect(proseProblem(planted)).toMatch(/not in run/);
  });
});
