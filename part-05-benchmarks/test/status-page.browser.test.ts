// The status page in a real browser: Debian's Chromium driven by playwright-core (which never
// downloads a browser). Where no Chromium is installed, this test says so and skips.
import { existsSync, mkdirSync } from 'node:fs';
import { afterEach, describe, expect, it } from 'vitest';
import { chromium } from 'playwright-core';
import { useFixture } from './fixture.ts';
import { namedBackend, request } from './helpers.ts';
import { startAdmin, type Admin } from '../src/admin.ts';

const CHROMIUM = [process.env.CHROMIUM_PATH, '/usr/bin/chromium', '/usr/bin/chromium-browser'].find((path) => path && existsSync(path));
if (!CHROMIUM) {
  console.warn('status page browser test SKIPPED: no Chromium found. Install it (apt-get install -y chromium) or set CHROMIUM_PATH.');
}
export const SCREENSHOT = 'results/status-page.png';

const fx = useFixture();
let admin: Admin | undefined;
afterEach(async () => {
  await admin?.close();
  admin = undefined;
});

describe.skipIf(!CHROMIUM)('status page in Chromium', () => {
  it('lists every backend, and a killed backend\'s row turns down within a few seconds', async () => {
    const a = await fx.backend(namedBackend('a'));
    const b = await fx.backend(namedBackend('b'));
    const { port, proxy } = await fx.proxy({ backends: [{ address: a }, { address: b }] });
    admin = await startAdmin({ host: '127.0.0.1', port: 0 }, async () => proxy.status());
    const browser = await chromium.launch({ executablePath: CHROMIUM, args: ['--no-sandbox'] });
    try {
      const page = await browser.newPage({ viewport: { width: 1280, height: 420 } });
      await page.goto(`http://127.0.0.1:${admin.address.port}/`);
      for (const address of [a, b]) await page.waitForSelector(`tr[data-backend="${address}"][data-state="up"]`);
      for (let i = 0; i < 6; i++) await request(port, { path: `/before/${i}` });

      await fx.stop(b); // the backend dies
      for (let i = 0; i < 4; i++) expect((await request(port, { path: `/after/${i}` })).status).toBe(200); // b fails once and is retried on a

      const row = await page.waitForSelector(`tr[data-backend="${b}"][data-state="down"]`, { timeout: 5000 });
      const text = await row.innerText();
      expect(text).toContain('DOWN'); // in words, not only in red
      expect(text).toMatch(/ECONNREFUSED/);
      expect(await page.locator(`tr[data-backend="${a}"]`).innerText()).toContain('UP');
      mkdirSync('results', { recursive: true });
      await page.screenshot({ path: SCREENSHOT, fullPage: true });
    } finally {
      await browser.close();
    }
  });
});
