import { mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { chromium, type BrowserContext, type Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { repoRoot, runCli, startUp, waitFor, type UpProcess } from './lib/cli.js';

/**
 * The dashboard in a real browser (Debian's Chromium, driven by playwright-core; never a browser
 * download) against a real `understudy up examples/kv/understudy.yaml`: log in with the one-time link
 * of `understudy dashboard`, see the kv service with its roles and charts, force a failover through
 * the API and see it on the page (decision log, epoch, a mark on the timeline). A screenshot is saved
 * to test-results/dashboard.png.
 */
const CHROMIUM = '/usr/bin/chromium';
const work = mkdtempSync(join(tmpdir(), 'understudy-dash-'));
const dataDir = join(work, 'data');
const shots = join(repoRoot, 'test-results');
let up: UpProcess | undefined;
let context: BrowserContext | undefined;
let page: Page;
const consoleErrors: string[] = [];

interface StatusJson {
  services: {
    name: string;
    epoch: number;
    degraded: boolean;
    instances: { role: string; phase: string; health?: { healthy: boolean } }[];
  }[];
}

function status(): StatusJson {
  const r = runCli(['status', '-o', 'json', '-d', dataDir]);
  return JSON.parse(r.code === 0 ? r.stdout : '{"services":[]}') as StatusJson;
}

async function startService(): Promise<void> {
  up = await startUp(join(repoRoot, 'examples/kv/understudy.yaml'), dataDir);
  await waitFor(
    () => status().services[0]?.instances.filter((i) => i.phase === 'running').length === 2,
    20_000,
    () => up!.output(),
  );
}

function launchBrowser(): Promise<BrowserContext> {
  return chromium.launchPersistentContext(join(work, 'profile'), {
    executablePath: CHROMIUM,
    headless: true,
    args: [
      '--headless',
      '--no-sandbox',
      '--disable-gpu',
      '--disable-quic',
      '--no-first-run',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
    ],
    viewport: { width: 1240, height: 1000 },
  });
}

beforeAll(async () => {
  // The browser starts while the service does: neither needs the other until the first test.
  const [service, browser] = await Promise.allSettled([startService(), launchBrowser()]);
  if (browser.status === 'fulfilled') context = browser.value;
  if (service.status === 'rejected') throw service.reason;
  if (browser.status === 'rejected') throw browser.reason;
  page = browser.value.pages()[0] ?? (await browser.value.newPage());
  page.on('console', (m) => {
    if (m.type() === 'error') consoleErrors.push(m.text());
  });
  page.on('pageerror', (e) => consoleErrors.push(e.message));
}, 60_000);

afterAll(async () => {
  await context?.close().catch(() => undefined);
  if (up && up.child.exitCode === null) {
    up.child.kill('SIGINT');
    const exited = await Promise.race([up.exited, new Promise((r) => setTimeout(() => r('late'), 15_000))]);
    if (exited === 'late') up.child.kill('SIGKILL');
  }
  rmSync(work, { recursive: true, force: true });
}, 30_000);

describe('understudy forecast on the kv example', () => {
  it('says the service makes no forecast, as a line and as JSON', () => {
    const r = runCli(['forecast', 'kv', '-d', dataDir]);
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/^kv: this service makes no forecast/);
    const json = runCli(['forecast', 'kv', '-o', 'json', '-d', dataDir]);
    expect(JSON.parse(json.stdout)).toMatchObject({ service: 'kv', forecasting: false });
    const missing = runCli(['forecast', 'nope', '-d', dataDir]);
    expect(missing.code).not.toBe(0);
    expect(missing.stderr).toContain("no service named 'nope'");
  });
});

describe('the dashboard in Chromium', () => {
  it('shows how to log in, and no data, without a session', async () => {
    const api = (JSON.parse(readFileSync(join(dataDir, 'api.json'), 'utf8')) as { url: string }).url;
    await page.goto(`${api}/ui/`);
    await page.getByRole('heading', { name: 'Log in to see the dashboard' }).waitFor();
    expect(await page.locator('[data-service]').count()).toBe(0);
  });

  it('logs in with the one-time link of `understudy dashboard`, which then leaves the address bar', async () => {
    const r = runCli(['dashboard', '-d', dataDir]);
    expect(r.code).toBe(0);
    const url = r.stdout.trim();
    const token = readFileSync(join(dataDir, 'token'), 'utf8').trim();
    expect(url).toMatch(/^http:\/\/127\.0\.0\.1:\d+\/ui\/login\?code=[\w-]+$/);
    expect(url).not.toContain(token);
    await page.goto(url);
    expect(new URL(page.url()).pathname).toBe('/ui/');
    expect(page.url()).not.toContain('code=');
    const cookies = await context!.cookies();
    expect(cookies.map((c) => [c.name, c.httpOnly, c.sameSite])).toEqual([
      ['understudy_session', true, 'Strict'],
    ]);
    expect(cookies[0]!.value).not.toBe(token);
    // The same link a second time is refused.
    const again = await page.goto(url);
    expect(again?.status()).toBe(401);
  });

  it('lists the kv service on the overview and opens its page with roles and four charts', async () => {
    await page.goto(new URL('/ui/#/', page.url()).href);
    const row = page.locator('tr[data-service="kv"]');
    await row.waitFor();
    await expect.poll(() => row.textContent()).toContain('1 primary · 1 echo');
    mkdirSync(shots, { recursive: true });
    await page.screenshot({ path: join(shots, 'dashboard-overview.png') });
    await row.getByRole('link', { name: 'kv' }).click();
    await page.getByRole('heading', { name: 'kv', level: 1 }).waitFor();
    await page.locator('tr[data-role="primary"]').waitFor();
    await page.locator('tr[data-role="echo"]').waitFor();
    expect(await page.locator('figure.chart canvas').count()).toBe(4);
    // The counts chart has samples (its empty state is gone) once the page has polled a few times.
    const counts = page.getByRole('figure', { name: 'Serving and warm pool' });
    await expect.poll(() => counts.locator('.empty').isHidden(), { timeout: 10_000 }).toBe(true);
  });

  it('shows the service’s profile: its use this hour, the port it listens on, how echoes are sized', async () => {
    const panel = page.getByRole('region', { name: 'Profile' });
    const hour = new Date().getUTCHours();
    await panel.locator(`tr[data-hour="${hour}"]`).waitFor({ timeout: 20_000 });
    await expect.poll(() => panel.textContent(), { timeout: 20_000 }).toMatch(/Listening: \d+/);
    expect(await panel.locator('[data-sizing]').getAttribute('data-sizing')).toBe('fixed-fraction');
  });

  it('shows a failover forced through the API: decision log, new epoch, a mark on the timeline', async () => {
    const epochBefore = status().services[0]!.epoch;
    const api = (JSON.parse(readFileSync(join(dataDir, 'api.json'), 'utf8')) as { url: string }).url;
    const token = readFileSync(join(dataDir, 'token'), 'utf8').trim();
    const res = await fetch(`${api}/v1/services/kv/failover`, {
      method: 'POST',
      headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
      body: JSON.stringify({ reason: 'browser test' }),
    });
    expect(res.status).toBe(200);
    await page.locator('table.log tr[data-kind="failover"]').first().waitFor({ timeout: 10_000 });
    const epochCard = page.locator('.card[data-card="Epoch"] dd');
    await expect.poll(() => epochCard.textContent(), { timeout: 10_000 }).toBe(String(epochBefore + 1));
    await expect
      .poll(() => page.locator('.card[data-card="Last failover"]').textContent(), { timeout: 10_000 })
      .toMatch(/failover kv-\d+ → kv-\d+/);
    const counts = page.getByRole('figure', { name: 'Serving and warm pool' });
    await expect.poll(() => counts.getAttribute('data-marks'), { timeout: 10_000 }).toBe('1');
    // Let the replacement echo come up and a few more samples arrive, then keep a picture of it.
    await expect
      .poll(() => page.locator('tr[data-role="echo"]').count(), { timeout: 15_000 })
      .toBeGreaterThan(0);
    await page.waitForTimeout(1500);
    mkdirSync(shots, { recursive: true });
    await page.screenshot({ path: join(shots, 'dashboard.png'), fullPage: true });
    // No script error or CSP refusal; the only failed loads are the two 401s the test asked for.
    expect(consoleErrors.filter((e) => !e.includes('status of 401'))).toEqual([]);
  });

  it('forces a failover from its own button (a same-origin POST with the CSRF header on the session)', async () => {
    // The echo the last failover left must be back and healthy, and redundancy restored, first.
    await waitFor(
      () => {
        const kv = status().services[0];
        const echo = kv?.instances.find((i) => i.role === 'echo');
        return kv?.degraded === false && echo?.phase === 'running' && echo.health?.healthy === true;
      },
      20_000,
      () => up!.output(),
    );
    const epochBefore = status().services[0]!.epoch;
    page.once('dialog', (d) => void d.accept());
    await page.getByRole('button', { name: 'Force failover' }).click();
    await expect
      .poll(() => page.locator('.message').textContent(), { timeout: 10_000 })
      .toBe('Failover requested: see the decision log.');
    await expect.poll(() => status().services[0]!.epoch, { timeout: 10_000 }).toBe(epochBefore + 1);
    await expect
      .poll(() => page.locator('table.log tr[data-kind="failover"]').count(), { timeout: 10_000 })
      .toBe(2);
  });
});
