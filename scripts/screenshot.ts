// docs/screenshot.png, the README's picture of the HTML report: a real run of 16 workers x 4 cards
// with a kill mid reduce-scatter, a hang and a slow rank, its report written with --html, opened in
// Chromium and photographed. `node dist/scripts/screenshot.js [--out docs/screenshot.png]
// [--html runs/screenshot.html] [--height 1500]`.
import { mkdirSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';
import { run } from '../src/api/index.js';
import { CHROMIUM, hasChromium, openChromium } from './chromium.js';

const { values } = parseArgs({ options: { out: { type: 'string', default: 'docs/screenshot.png' }, html: { type: 'string', default: 'runs/screenshot.html' }, height: { type: 'string', default: '1500' } } });
if (!hasChromium()) {
  console.error(`screenshot: ${CHROMIUM} is absent (apt-get install chromium)`);
  process.exit(2);
}
const html = resolve(values.html);
const out = resolve(values.out);
const report = await run(
  {
    workers: 16,
    cardsPerWorker: 4,
    size: '256KiB',
    steps: 60,
    computeMs: 20,
    algo: 'ring',
    inject: ['kill:rank=3:step=15:phase=reduce-scatter', 'hang:rank=9:step=32:ms=2500', 'slow:rank=12:factor=3:step=42:steps=10'],
    html,
  },
  { log: (l) => l.startsWith('report:') && console.log(l) },
);
console.log(`run: ${report.ok ? 'ok' : `FAILED: ${report.error}`}, ${report.faults.length} faults, ${report.stragglers.length} stragglers, wall ${report.wallMs} ms`);
const browser = await openChromium();
try {
  const { page, errors } = await browser.page({ width: 1200, height: Number(values.height) });
  await page.goto(pathToFileURL(html).href);
  await page.waitForSelector('#steps-chart canvas');
  mkdirSync(dirname(out), { recursive: true });
  await page.screenshot({ path: out });
  if (errors.length) throw new Error(`console errors: ${errors.join('; ')}`);
  console.log(`screenshot: ${out}`);
} finally {
  await browser.close();
}
process.exitCode = report.ok ? 0 : 1;
