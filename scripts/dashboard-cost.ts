// What the live dashboard costs a run: the same run with and without --ui-port and a connected
// Chromium page, interleaved (A B, B A, ...) so the machine's drift falls on both alike. Prints per
// run the training time (since training started), the median step and the coordinator's CPU, then
// the median ratio with/without; the dashboard's own count of updates and of the coordinator's time building and sending them. `node dist/scripts/dashboard-cost.js [--workers 64] [--reps 3]
// [--steps 100] [--size 64KiB] [--cards 1]`.
import { parseArgs } from 'node:util';
import { run, type RunReport } from '../src/api/index.js';
import { CHROMIUM, hasChromium, openChromium } from './chromium.js';

const { values } = parseArgs({
  options: { workers: { type: 'string', default: '64' }, reps: { type: 'string', default: '3' }, steps: { type: 'string', default: '100' }, size: { type: 'string', default: '64KiB' }, cards: { type: 'string', default: '1' } },
});
if (!hasChromium()) {
  console.error(`dashboard-cost: ${CHROMIUM} is absent (apt-get install chromium)`);
  process.exit(2);
}
const workers = Number(values.workers);
const reps = Number(values.reps);
const browser = await openChromium();
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor((xs.length - 1) / 2)]!;

async function once(ui: boolean): Promise<{ report: RunReport; updates: number; updateMs: number }> {
  let updateCount = 0;
  let updateMs = 0;
  let pageDone: Promise<void> = Promise.resolve();
  const report = await run(
    { workers, cardsPerWorker: Number(values.cards), size: values.size, steps: Number(values.steps), ...(ui ? { uiPort: 0 } : {}) },
    {
      log: (line) => {
        const cost = /^dashboard: (\d+) updates, (\d+) ms/.exec(line);
        if (cost) (updateCount = Number(cost[1])), (updateMs = Number(cost[2]));
        const m = /^dashboard: (http\S+)/.exec(line);
        if (!m) return;
        pageDone = (async () => {
          const { page } = await browser.page();
          await page.goto(m[1]!);
        })();
      },
    },
  );
  await pageDone;
  for (const ctx of browser.browser.contexts()) await ctx.close();
  return { report, updates: updateCount, updateMs };
}

const rows: { ui: boolean; trainingMs: number; stepMs: number; cpuMs: number; updates: number; updateMs: number }[] = [];
try {
  console.log(`dashboard cost: ${workers} workers, ${values.steps} steps of ${values.size} x ${values.cards} cards, ${reps} pairs interleaved`);
  console.log('rep  ui   training ms  step p50 ms  coordinator cpu ms  updates  building them ms');
  for (let i = 0; i < reps; i++) {
    for (const ui of i % 2 === 0 ? [false, true] : [true, false]) {
      const { report: r, updates, updateMs } = await once(ui);
      if (!r.ok) throw new Error(`run failed: ${r.error}`);
      const row = { ui, trainingMs: r.goodput.wallMs, stepMs: r.stepMs.p50, cpuMs: r.coordinatorCpu.ms, updates, updateMs };
      rows.push(row);
      console.log(`${String(i + 1).padStart(3)}  ${ui ? 'yes' : 'no '}  ${String(row.trainingMs).padStart(11)}  ${row.stepMs.toFixed(1).padStart(11)}  ${String(row.cpuMs).padStart(18)}  ${String(updates).padStart(7)}  ${String(updateMs).padStart(16)}`);
    }
  }
} finally {
  await browser.close();
}
const of = (ui: boolean, k: 'trainingMs' | 'stepMs' | 'cpuMs') => median(rows.filter((r) => r.ui === ui).map((r) => r[k]));
for (const k of ['trainingMs', 'stepMs', 'cpuMs'] as const) {
  console.log(`median ${k}: without ${of(false, k)}, with ${of(true, k)}, ratio ${(of(true, k) / of(false, k)).toFixed(3)}`);
}
