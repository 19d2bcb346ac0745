// examples/browser-vite: built by Vite's JS API (in a child process: Vite is ESM-only) and served by
// the example's own backend, the page must show in headless Chromium the service it verified, alice
// as the caller the service saw, and the answer it decrypted.
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import express from 'express';
import { chromium, type Browser } from 'playwright-core';
import { startBackend, type Backend } from '../../examples/browser-vite/server';

const ROOT = resolve(__dirname, '../..');
const CHROMIUM = '/usr/bin/chromium';
const ARGS = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'];
const available = existsSync(CHROMIUM);
// In CI a missing browser is a failure; locally the suite may be skipped, saying why.
const suite = available || process.env.CI ? describe : describe.skip;
if (!available && !process.env.CI) console.warn(`test/examples/browser-vite skipped: ${CHROMIUM} not found (install Debian's chromium package to run it)`);

suite('examples/browser-vite in headless Chromium', () => {
  const outDir = mkdtempSync(join(tmpdir(), 'oidc2-vite-'));
  let backend: Backend | undefined;
  let browser: Browser | undefined;

  afterAll(async () => {
    await browser?.close();
    await backend?.close();
    rmSync(outDir, { recursive: true, force: true });
  });

  it('shows the verified service, the caller it saw and the decrypted answer', async () => {
    expect(existsSync(CHROMIUM)).toBe(true);
    const script = `import { build } from 'vite';
await build({ root: ${JSON.stringify(resolve(ROOT, 'examples/browser-vite'))}, logLevel: 'warn', build: { outDir: ${JSON.stringify(outDir)}, emptyOutDir: true } });`;
    const built = spawnSync(process.execPath, ['--input-type=module', '-e', script], { cwd: ROOT, encoding: 'utf8', timeout: 120_000 });
    expect(built.stderr).toBe('');
    expect(built.status).toBe(0);
    // The page loads the bundle Vite made, not the TypeScript source.
    const html = readFileSync(join(outDir, 'index.html'), 'utf8');
    expect(html).not.toContain('/src/app.ts');
    expect(html).toMatch(/<script type="module" crossorigin src="\/assets\/[\w-]+\.js"><\/script>/);

    backend = await startBackend();
    backend.servePage(express.static(outDir));
    browser = await chromium.launch({ executablePath: CHROMIUM, args: ARGS });
    const page = await browser.newPage();
    const problems: string[] = [];
    page.on('pageerror', (error) => problems.push(error.message));
    page.on('console', (message) => message.type() === 'error' && problems.push(message.text()));
    await page.goto(`${backend.pageUrl}/`);
    await page.waitForSelector('body[data-done="true"]', { timeout: 30_000 });
    const text = async (id: string) => (await page.locator(`#${id}`).textContent())?.trim();

    expect(problems).toEqual([]);
    expect(await text('error')).toBe('');
    expect(await text('service')).toBe(`spiffe://example.local/orders, certified by ${backend.pageUrl}/oidc2`);
    expect(await text('caller')).toBe('alice');
    expect(await text('answer')).toBe('201 {"item":"book","quantity":2}');
    expect(await text('encryption')).toBe('x25519 session, body encrypted: true');
  }, 180_000);
});
