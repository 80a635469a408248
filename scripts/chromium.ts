// Debian's Chromium driven by playwright-core, for the browser tests and scripts/screenshot.ts.
// As root it needs --no-sandbox; the other flags keep it off the network (this machine has none,
// and Chromium keeps trying otherwise). Every launch gets a new empty profile: playwright's launch()
// passes Chromium a --user-data-dir of its own in a new temporary folder and removes it at close.
import { existsSync } from 'node:fs';
import type { Browser, Page } from 'playwright-core';

export const CHROMIUM = process.env.RINGSWARM_CHROMIUM ?? '/usr/bin/chromium';

export const CHROMIUM_ARGS = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'];

export const hasChromium = (): boolean => existsSync(CHROMIUM);

export interface OpenBrowser {
  browser: Browser;
  /** A new page whose console errors and page errors are collected in `errors`. */
  page(viewport?: { width: number; height: number }): Promise<{ page: Page; errors: string[] }>;
  close(): Promise<void>;
}

export async function openChromium(): Promise<OpenBrowser> {
  const { chromium } = await import('playwright-core');
  const browser = await chromium.launch({ executablePath: CHROMIUM, args: CHROMIUM_ARGS, timeout: 60_000 });
  return {
    browser,
    async page(viewport = { width: 1200, height: 900 }) {
      const page = await browser.newPage({ viewport });
      const errors: string[] = [];
      page.on('console', (m) => m.type() === 'error' && errors.push(m.text()));
      page.on('pageerror', (e) => errors.push(String(e)));
      return { page, errors };
    },
    async close() {
      await browser.close().catch(() => {});
    },
  };
}
