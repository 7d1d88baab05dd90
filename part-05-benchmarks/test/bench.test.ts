// A smoke test of the benchmark harness: `--quick` runs to the end and reports sane numbers.
// It asserts nothing about speed; speed is what the harness itself reports.
import { spawn, spawnSync } from 'node:child_process';
import { once } from 'node:events';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterEach, describe, expect, it } from 'vitest';
import type { Results } from '../bench/report.ts';

const RUN = fileURLToPath(new URL('../bench/run.ts', import.meta.url));

let out = '';
afterEach(() => rmSync(out, { recursive: true, force: true })); // leaves nothing in the temporary folder

describe('benchmark harness', () => {
  it('runs every scenario against every target with --quick and writes JSON, markdown and SVG', async () => {
    out = mkdtempSync(join(tmpdir(), 'bench-'));
    const child = spawn(process.execPath, ['--import', 'tsx', RUN, '--quick', '--out', out], { stdio: ['ignore', 'pipe', 'pipe'] });
    let output = '';
    child.stdout.on('data', (chunk: Buffer) => (output += chunk));
    child.stderr.on('data', (chunk: Buffer) => (output += chunk));
    const [code] = await once(child, 'close');
    expect(code, output).toBe(0);

    expect(output).toMatch(/\[1\/5 small\] direct/); // progress lines
    const results = JSON.parse(readFileSync(join(out, 'latest.json'), 'utf8')) as Results;
    expect(results.scenarios.map((s) => s.scenario.key)).toEqual(['small', '64k', 'close', 'c1000', 'killed']);
    for (const { scenario, targets } of results.scenarios) {
      for (const { target, runs } of targets) {
        expect(runs, `${scenario.key}/${target}`).toHaveLength(1);
        expect(typeof runs[0]!.requests, `${scenario.key}/${target}`).toBe('number');
        // In the small scenario every target serves within the second, part 1 too (one connection at
        // a time). The others may not on a busy machine: 1,000 connections take a while to open.
        if (scenario.key !== 'small') continue;
        expect(runs[0]!.requests, `${scenario.key}/${target}`).toBeGreaterThan(0);
        if (target !== 'direct') expect(runs[0]!.proxyMicrosPerRequest, `${scenario.key}/${target}`).toBeGreaterThan(0);
      }
      // Every scenario measured something through a proxy.
      expect(targets.some(({ target, runs }) => target !== 'direct' && runs[0]!.requests > 0), scenario.key).toBe(true);
    }
    expect(readFileSync(join(out, 'benchmarks.md'), 'utf8')).toMatch(/## keep-alive, small responses/);
    expect(existsSync(join(out, 'benchmarks.svg'))).toBe(true);
  }, 400_000);

  it('refuses an --fd-limit that is not a whole number of at least 64 (exit 2, one line), before starting anything', () => {
    for (const limit of ['10', 'many', '1024.5']) {
      const run = spawnSync(process.execPath, ['--import', 'tsx', RUN, '--fd-limit', limit], { encoding: 'utf8', timeout: 20_000 });
      expect(run.status, limit).toBe(2);
      expect(run.stderr.trim(), limit).toBe(`error: --fd-limit must be a whole number of descriptors, at least 64, got "${limit}"`);
      expect(run.stdout, limit).not.toMatch(/\[1\/\d/);
    }
  });
});
