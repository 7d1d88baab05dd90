// The status page in a real browser: Debian's Chromium driven by playwright-core (which never
// downloads a browser). Where no Chromium is installed, this test says so and skips.
import { existsSync, mkdirSync } from 'node:fs';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { chromium, type Browser, type Page } from 'playwright-core';
import { useFixture } from './fixture.ts';
import { namedBackend, request } from './helpers.ts';
import { startAdmin, type Admin, type Lab } from '../src/observe/admin.ts';
import type { ProxyStatus } from '../src/observe/status.ts';

const CHROMIUM = [process.env.CHROMIUM_PATH, '/usr/bin/chromium', '/usr/bin/chromium-browser'].find((path) => path && existsSync(path));
if (!CHROMIUM) {
  console.warn('status page browser test SKIPPED: no Chromium found. Install it (apt-get install -y chromium) or set CHROMIUM_PATH.');
}
export const SCREENSHOT = 'results/status-page.png';
export const SCREENSHOT_800 = 'results/status-page-800.png';

const fx = useFixture();
let browser: Browser | undefined;
let page: Page | undefined;
let admin: Admin | undefined;
beforeAll(async () => {
  if (CHROMIUM) browser = await chromium.launch({ executablePath: CHROMIUM, args: ['--no-sandbox'] });
});
afterAll(async () => {
  await browser?.close();
});
afterEach(async () => {
  await page?.context().close();
  await admin?.close();
  page = admin = undefined;
});

/** Serves the page over `status`; returns the page, open at 1280 px unless told otherwise. */
async function openPage(status: () => Promise<ProxyStatus>, lab?: Lab, width = 1280): Promise<Page> {
  admin = await startAdmin({ host: '127.0.0.1', port: 0 }, status, lab);
  page = await browser!.newPage({ viewport: { width, height: 420 } });
  await page.goto(`http://127.0.0.1:${admin.address.port}/`);
  return page;
}

/** Two backends behind a proxy, and a lab for both that counts the presses it receives. Every
 *  status served carries a new `generation`, so a test can wait for the page's next refresh. */
async function labbed() {
  const a = await fx.backend(namedBackend('a'));
  const b = await fx.backend(namedBackend('b'));
  const { port, proxy } = await fx.proxy({ backends: [{ address: a }, { address: b }] });
  const presses: string[] = [];
  let served = 0;
  const lab: Lab = { act: (backend, action) => void presses.push(`${backend} ${action}`) };
  const status = async () => ({
    ...proxy.status(),
    generation: ++served,
    lab: [{ backend: a, label: 'www-1', mode: 'normal' }, { backend: b, label: 'www-2', mode: 'normal' }],
  });
  return { a, b, port, presses, status, lab, served: () => served };
}

/** Waits until the page has drawn a status with at least this generation. */
async function refreshed(p: Page, generation: number): Promise<void> {
  await p.waitForFunction(`Number(/config generation (\\d+)/.exec(document.body.innerText)?.[1] ?? 0) >= ${generation}`);
}

describe.skipIf(!CHROMIUM)('status page in Chromium', () => {
  it('lists every backend, and a killed backend\'s row turns down within a few seconds', async () => {
    const a = await fx.backend(namedBackend('a'));
    const b = await fx.backend(namedBackend('b'));
    const { port, proxy } = await fx.proxy({ backends: [{ address: a }, { address: b }] });
    const page = await openPage(async () => proxy.status());
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
  });

  it('a lab button held for 300 ms while the table refreshes still sends its request', async () => {
    const { a, presses, status, lab, served } = await labbed();
    const page = await openPage(status, lab);
    const button = page.locator(`tr[data-backend="${a}"] button[data-action="slow"]`);
    for (let i = 1; i <= 3; i++) {
      const box = (await button.boundingBox())!;
      await page.mouse.move(box.x + box.width / 2, box.y + box.height / 2);
      const before = served();
      await page.mouse.down();
      // The hold lasts 300 ms, and at least until the page has redrawn the table under the pointer.
      await Promise.all([refreshed(page, before + 1), page.waitForTimeout(300)]);
      const sent = page.waitForRequest(/\/lab\//, { timeout: 3000 });
      await page.mouse.up();
      await (await sent).response();
      expect(presses).toEqual(Array(i).fill(`${a} slow`)); // the server received every press
    }
  });

  it('a text selection in a row survives a refresh', async () => {
    const { a, status, lab, served } = await labbed();
    const page = await openPage(status, lab);
    await page.waitForSelector(`tr[data-backend="${a}"]`);
    await page.locator(`tr[data-backend="${a}"] td`).first().selectText(); // the backend cell, as a user copying it
    const selected = () => page.evaluate<string>('getSelection().toString()');
    const before = await selected();
    expect(before).toContain(a);
    await refreshed(page, served() + 1);
    expect(await selected()).toBe(before);
  });

  it('when the status source stops answering, the rows turn grey and unknown, saying since when', async () => {
    const { a, b, status, lab } = await labbed();
    const page = await openPage(status, lab);
    for (const address of [a, b]) await page.waitForSelector(`tr[data-backend="${address}"][data-state="up"]`);
    await admin!.close(); // the proxy stops answering
    admin = undefined;
    for (const address of [a, b]) {
      const row = page.locator(`tr[data-backend="${address}"][data-state="unknown"]`);
      await row.waitFor({ timeout: 5000 });
      expect(await row.locator('.state').innerText()).toMatch(/^\? UNKNOWN\n\d+ s ago$/);
      expect(await row.innerText()).toContain('last seen UP');
      expect(await row.locator('button:enabled').count()).toBe(0); // nobody to send a press to
    }
    expect(await page.locator('tbody').innerText()).not.toContain('● UP');
    expect(await page.locator('#error').innerText()).toMatch(/^no answer from the proxy since \S+ \(\d+ s ago\)$/);
  });

  it('shows a backend\'s name beside its address, and a row without a name as before', async () => {
    const a = await fx.backend(namedBackend('a'));
    const b = await fx.backend(namedBackend('b'));
    const { proxy } = await fx.proxy({ backends: [{ address: a, name: 'www-1' }, { address: b }] }); // HAProxy's `server NAME ADDR`
    const page = await openPage(async () => proxy.status());
    const named = page.locator(`tr[data-backend="${a}"]`);
    await named.waitFor({ timeout: 5000 });
    expect(await named.locator('td').first().innerText()).toMatch(new RegExp(`^${a}\\s+www-1$`));
    const plain = page.locator(`tr[data-backend="${b}"]`);
    expect(await plain.locator('td').first().innerText()).toBe(b);
    expect(await plain.innerText()).toContain('UP');
  });

  it('says uptime and "since" with the same rounding (down)', async () => {
    const a = await fx.backend(namedBackend('a'));
    const { proxy } = await fx.proxy({ backends: [{ address: a }] });
    const page = await openPage(async () => {
      const status = proxy.status();
      status.upstreams[0]!.backends[0]!.since = Date.now() - 5500;
      return { ...status, uptimeSeconds: 5.5 };
    });
    await page.waitForSelector(`tr[data-backend="${a}"]`);
    expect(await page.locator('#global').innerText()).toContain('uptime 5 s');
    const row = await page.locator(`tr[data-backend="${a}"]`).innerText();
    expect(row).toContain('5 s ago');
    expect(row).not.toContain('6 s ago');
  });

  it('fits 800 px wide, lab column included, with no horizontal scrolling', async () => {
    const { a, b, port, status, lab } = await labbed();
    const page = await openPage(status, lab, 800);
    await page.waitForSelector(`tr[data-backend="${a}"] button[data-action="stop"]`);
    await fx.stop(b); // a down row has the longest reason
    for (let i = 0; i < 2; i++) await request(port, { path: `/${i}` });
    await page.waitForSelector(`tr[data-backend="${b}"][data-state="down"]`);
    mkdirSync('results', { recursive: true });
    await page.screenshot({ path: SCREENSHOT_800, fullPage: true });
    expect(await page.evaluate<number>('document.documentElement.scrollWidth')).toBeLessThanOrEqual(800);
  });

  it('loads without a console error (the favicon is inline, not a 404)', async () => {
    const { status, lab, served } = await labbed();
    admin = await startAdmin({ host: '127.0.0.1', port: 0 }, status, lab);
    page = await browser!.newPage();
    const errors: string[] = [];
    page.on('console', (message) => void (message.type() === 'error' && errors.push(message.text())));
    page.on('pageerror', (error) => void errors.push(error.message));
    await page.goto(`http://127.0.0.1:${admin.address.port}/`);
    await refreshed(page, served() + 1); // the browser asks for /favicon.ico just after the load, before this
    expect(errors).toEqual([]);
  });
});

