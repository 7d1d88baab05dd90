// A smoke test of the TLS benchmark: `--quick` runs to the end, every server it found measured
// something, and s_time -reuse really resumed. Nothing about speed. Without openssl it skips.
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterEach, describe, expect, it } from 'vitest';
import { NO_OPENSSL } from './tls-helpers.ts';

const TLS_BENCH = fileURLToPath(new URL('../bench/tls.ts', import.meta.url));

let out = '';
afterEach(() => rmSync(out, { recursive: true, force: true }));

interface Sample {
  perSecond: number;
  cpuMicros: number;
  p99: number | null;
  resumedShare: number | null;
}

describe.skipIf(NO_OPENSSL)('TLS benchmark', () => {
  it('runs full and resumed handshakes against this proxy (and nginx and HAProxy where installed) with --quick', async () => {
    out = mkdtempSync(join(tmpdir(), 'bench-tls-'));
    const child = spawn(process.execPath, ['--import', 'tsx', TLS_BENCH, '--quick', '--out', out], { stdio: ['ignore', 'pipe', 'pipe'] });
    let output = '';
    child.stdout.on('data', (chunk: Buffer) => (output += chunk));
    child.stderr.on('data', (chunk: Buffer) => (output += chunk));
    const [code] = await once(child, 'close');
    expect(code, output).toBe(0);

    const { samples } = JSON.parse(readFileSync(join(out, 'tls.json'), 'utf8')) as { samples: Record<string, Sample[]> };
    for (const keyType of ['ec', 'rsa']) {
      for (const scenario of ['new', 'reuse']) expect(samples[`part 5|${keyType}|${scenario}`]?.[0]?.perSecond, `${keyType} ${scenario}`).toBeGreaterThan(0);
    }
    for (const [key, [sample]] of Object.entries(samples)) {
      expect(sample!.perSecond, key).toBeGreaterThan(0);
      expect(sample!.cpuMicros, key).toBeGreaterThan(0);
      if (key.endsWith('|reuse')) expect(sample!.resumedShare, key).toBe(1);
    }
    expect(readFileSync(join(out, 'tls.md'), 'utf8')).toMatch(/### full handshake per request/);
  }, 300_000);
});
