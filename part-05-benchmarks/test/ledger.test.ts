// The cost ledger's patches still apply to today's code: each takes one guarantee out of a copy
// of this folder, and a change to the code they touch must not silently break them. No load, no
// network: `git apply --check` only, and the harness's argument handling.
import { spawnSync } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { applyPatch, copyPart } from '../bench/builds.ts';
import { ledgerPatches } from '../bench/ledger.ts';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const RUN = fileURLToPath(new URL('../bench/run.ts', import.meta.url));
// The guarantees of issue 21 that are patches (the access log and --admin are flags).
const GUARANTEES = ['counters', 'deadlines', 'forwarding', 'framing', 'health', 'hop-by-hop', 'validation'];

let copy: ReturnType<typeof copyPart>;
beforeAll(() => {
  copy = copyPart(ROOT);
});
afterAll(() => copy.remove());

describe('the cost ledger', () => {
  it('has one patch per guarantee, each saying what it takes out and what nginx does', () => {
    const patches = ledgerPatches();
    expect(patches.map((p) => p.name)).toEqual(GUARANTEES);
    for (const p of patches) {
      expect(p.guarantee, p.name).not.toBe('');
      expect(p.nginx, p.name).toMatch(/\S{10}/);
      expect(readFileSync(p.path, 'utf8'), p.name).toMatch(/^Takes out: /m);
    }
  });

  for (const name of GUARANTEES) {
    it(`bench/ledger/${name}.patch applies to today's code (git apply --check)`, () => {
      const patch = ledgerPatches().find((p) => p.name === name)!;
      expect(() => applyPatch(copy.folder, patch.path, true)).not.toThrow();
    });
  }

  it('refuses a patch whose context no longer matches, with git\'s message', () => {
    const patch = ledgerPatches()[0]!;
    const broken = join(copy.folder, 'broken.patch');
    // A context line that today's code does not have: what a later change to the code does to a patch.
    const text = readFileSync(patch.path, 'utf8').replace(/^ (.+)$/m, ' $1 // changed since');
    writeFileSync(broken, text);
    expect(() => applyPatch(copy.folder, broken, true)).toThrow(/patch does not apply|patch failed/);
  });
});

describe('npm run bench -- --ledger: arguments', () => {
  const bench = (...args: string[]) => spawnSync(process.execPath, ['--import', 'tsx', RUN, ...args], { encoding: 'utf8', timeout: 20_000 });

  it('--help documents --ledger and exits 0 before measuring anything', () => {
    const run = bench('--ledger', '--help');
    expect(run.status, run.stderr).toBe(0);
    expect(run.stdout).toMatch(/--ledger\s+the cost ledger/);
    expect(run.stdout).not.toMatch(/targets:/);
  });

  it('refuses --ledger with --publish, or with a part other than 5 (exit 2, one message)', () => {
    for (const args of [['--ledger', '--publish'], ['--ledger', '--part', '3']]) {
      const run = bench(...args);
      expect(run.status, args.join(' ')).toBe(2);
      expect(run.stderr, args.join(' ')).toMatch(/^error: --ledger /);
    }
  });
});
