// The HTML report and the live dashboard in a real browser: Debian's Chromium driven by
// playwright-core. (a) The report of a sim with an injected kill and a slow rank, and of a bench:
// no console error, every chart drawn (its canvas has pixels of its colours), the fault table has
// the kill. (b) The dashboard of a real run: the killed worker's cell changes state and colour, and
// the dashboard's port is closed once the run ends. Skipped when /usr/bin/chromium is absent,
// except under .ci/run (RINGSWARM_REQUIRE_ENGINES=1), which installs it.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import type { Page } from 'playwright-core';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { CHROMIUM, hasChromium, openChromium, type OpenBrowser } from '../../scripts/chromium.js';
import { killLeftovers, runCli, startCli } from '../e2e/helpers.js';

const required = process.env.RINGSWARM_REQUIRE_ENGINES === '1';
const skip = !hasChromium() && !required;
if (skip) console.warn(`test/browser: skipped: ${CHROMIUM} is absent (apt-get install chromium; RINGSWARM_REQUIRE_ENGINES=1 makes this a failure)`);

/** Pixels of a canvas under `selector` that are neither transparent nor near white, and how many distinct colours it has. */
function canvasInk(page: Page, selector: string): Promise<{ ink: number; colours: number; width: number }> {
  return page.evaluate((sel) => {
    const c = document.querySelector(sel) as HTMLCanvasElement | null;
    if (!c) return { ink: 0, colours: 0, width: 0 };
    const d = c.getContext('2d')!.getImageData(0, 0, c.width, c.height).data;
    let ink = 0;
    const colours = new Set<number>();
    for (let i = 0; i < d.length; i += 4) {
      if (d[i + 3]! < 16 || (d[i]! > 235 && d[i + 1]! > 235 && d[i + 2]! > 235)) continue;
      ink++;
      if (colours.size < 1000) colours.add((d[i]! << 16) | (d[i + 1]! << 8) | d[i + 2]!);
    }
    return { ink, colours: colours.size, width: c.width };
  }, selector);
}

describe.skipIf(skip)('in Chromium', () => {
  let browser: OpenBrowser;
  const dir = mkdtempSync(join(tmpdir(), 'ringswarm-browser-'));
  beforeAll(async () => {
    browser = await openChromium();
  }, 90_000);
  afterAll(async () => {
    await browser?.close();
    rmSync(dir, { recursive: true, force: true });
  });
  afterEach(killLeftovers);

  it('(a) opens the report of a sim with a kill and a slow rank: every chart drawn, the fault in its table, no console error', async () => {
    const file = join(dir, 'sim', 'report.html');
    const r = await runCli(['sim', '-w', '16', '-g', '2', '-s', '64KiB', '--steps', '40', '--compute-ms', '10', '--inject', 'kill:rank=3:step=10:phase=reduce-scatter', '--inject', 'slow:rank=5:factor=3:step=20:steps=10', '--html', file]);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toContain(`report: ${file}`);
    const { page, errors } = await browser.page();
    try {
      await page.goto(pathToFileURL(file).href);
      await page.waitForSelector('#steps-chart canvas');
      const steps = await canvasInk(page, '#steps-chart canvas');
      const heat = await canvasInk(page, '#heat');
      expect(steps.ink).toBeGreaterThan(2000);
      expect(heat.ink).toBeGreaterThan(16 * 40);
      // The heat map's colours: the slow steps stand out from the clean ones, and the legend's ramp.
      expect(heat.colours).toBeGreaterThan(20);
      const faults = await page.locator('#faults tbody tr').allInnerTexts();
      expect(faults).toHaveLength(1);
      expect(faults[0]).toMatch(/kill\s+rank 3\s+step 10 \/ reduce-scatter\s+yes\s+yes\s+exit/);
      expect(faults[0]).toMatch(/yes$/);
      expect(await page.locator('#stragglers tbody').innerText()).toMatch(/node\s+rank 5/);
      // Hovering a cell names it.
      const box = (await page.locator('#heat').boundingBox())!;
      await page.mouse.move(box.x + box.width / 2, box.y + 20);
      expect(await page.locator('#heat-tip').innerText()).toMatch(/^rank \d+, step \d+: [\d.]+ ms \(compute [\d.]+ ms\)$/);
      expect(await page.locator('#badge').innerText()).toBe('OK');
      expect(errors).toEqual([]);
    } finally {
      await page.close();
    }
  }, 120_000);

  it('(a) opens the report of a bench of two algorithms: bandwidth against size drawn, no console error', async () => {
    const file = join(dir, 'bench.html');
    const r = await runCli(['bench', '-w', '2', '-g', '1', '-b', '1K', '-e', '64K', '-n', '3', '--warmup', '1', '--algo', 'ring,rd', '--html', file]);
    expect(r.code, r.stderr).toBe(0);
    const { page, errors } = await browser.page();
    try {
      await page.goto(pathToFileURL(file).href);
      await page.waitForSelector('#bench-chart canvas');
      expect((await canvasInk(page, '#bench-chart canvas')).ink).toBeGreaterThan(2000);
      expect(await page.locator('#bench-chart').innerText()).toMatch(/ring measured[\s\S]*ring model[\s\S]*rd measured[\s\S]*rd model/);
      expect(await page.locator('#steps-chart').isVisible()).toBe(false);
      expect(errors).toEqual([]);
    } finally {
      await page.close();
    }
  }, 120_000);

  it('(b) shows a real run live: the killed worker turns dead on the grid, then the run ends and the port closes', async () => {
    const run = startCli(['run', '-w', '6', '-g', '1', '-s', '16KiB', '--steps', '300', '--compute-ms', '20', '--ui-port', '0', '--inject', 'kill:rank=2:step=100']);
    const url = (await run.waitFor(/dashboard: (http:\/\/127\.0\.0\.1:\d+\/)/, 60_000))[1]!;
    const { page, errors } = await browser.page();
    try {
      // Every state rank 2's cell takes, with its colour, from the page's first render on.
      await page.addInitScript(() => {
        const seen: string[] = [];
        (window as unknown as { seen: string[] }).seen = seen;
        document.addEventListener('DOMContentLoaded', () => {
          const watch = () => {
            const c = document.querySelector('#grid .cell[data-rank="2"]') as HTMLElement | null;
            const s = c ? `${c.dataset.state}:${getComputedStyle(c).backgroundColor}` : '';
            if (s && seen[seen.length - 1] !== s) seen.push(s);
          };
          new MutationObserver(watch).observe(document.getElementById('grid')!, { subtree: true, attributes: true, childList: true });
        });
      });
      await page.goto(url);
      await page.waitForFunction(() => (window as unknown as { seen: string[] }).seen.some((s) => s.startsWith('dead:')), undefined, { timeout: 90_000 });
      const seen = await page.evaluate(() => (window as unknown as { seen: string[] }).seen);
      const colour = (state: string) => seen.find((s) => s.startsWith(`${state}:`))?.slice(state.length + 1);
      expect(seen.findIndex((s) => s.startsWith('training:')), seen.join(' ')).toBeLessThan(seen.findIndex((s) => s.startsWith('dead:')));
      expect(colour('dead')).not.toBe(colour('training'));
      // The updates so far, merged: a heat map column per counted step, each with its ranks' times.
      const merged = await page.evaluate(() => {
        const v = (window as unknown as { ringswarm: { view: { steps: { step: number[] }; heat: { ranks: number; stepMs: (number | null)[] } } } }).ringswarm.view;
        return { steps: v.steps.step.length, ranks: v.heat.ranks, cells: v.heat.stepMs.length, filled: v.heat.stepMs.filter((c) => c !== null).length };
      });
      expect(merged.steps).toBeGreaterThan(50);
      expect(merged.cells).toBe(merged.steps * merged.ranks);
      expect(merged.filled).toBeGreaterThan(merged.cells * 0.9);
      expect((await canvasInk(page, '#heat')).ink).toBeGreaterThan(1000);
      const end = await run.exited;
      expect(end.code, run.stdout() + run.stderr()).toBe(0);
      // The last view came before the close: the run is over, and healed.
      await page.waitForFunction(() => document.getElementById('live-line')!.textContent!.includes('disconnected'), undefined, { timeout: 10_000 });
      expect(await page.locator('#badge').innerText()).toBe('OK');
      expect(await page.locator('#faults tbody').innerText()).toMatch(/kill\s+rank 2\s+step 100/);
      await expect(fetch(url)).rejects.toThrow();
      expect(errors).toEqual([]);
    } finally {
      await page.close();
    }
  }, 180_000);
});
