// Straggler accuracy on real processes: M seeded trials, each with one injected straggler (a rank
// or a link, severity 1.5x to 5x) on 16 workers, plus clean runs with jitter. Prints precision,
// recall within 5 steps, node/link told apart, false positives per clean run, and the median
// steps to detection. Bounded: every run has a timeout. Exit non-zero only if a run fails.
//
//   node dist/scripts/straggler-accuracy.js [--trials 20] [--clean 20] [--workers 16] [--steps 30] [--seed 1]
import { Command } from 'commander';
import { runReport } from './run-report.js';
import { seededRandom } from '../src/runtime/memory-transport.js';


interface Found {
  kind: 'node' | 'link';
  rank?: number;
  link?: [number, number];
  detectedAtStep: number;
}

const run = (args: string[], timeoutMs: number) => runReport<{ ok: boolean; stragglers: Found[] }>(args, timeoutMs);

async function main(): Promise<void> {
  const o = new Command('straggler-accuracy')
    .option('--trials <n>', 'trials with one straggler', '20')
    .option('--clean <n>', 'clean runs with jitter', '20')
    .option('--workers <n>', 'workers', '16')
    .option('--steps <n>', 'steps per run', '30')
    .option('--onset <step>', 'step the straggler starts at', '8')
    .option('--compute-ms <ms>', 'emulated compute per step', '20')
    .option('--jitter-ms <ms>', 'jitter of the clean runs', '10')
    .option('--seed <n>', 'seed of the trial draws', '1')
    .parse()
    .opts();
  const W = Number(o.workers);
  const onset = Number(o.onset);
  const rand = seededRandom(Number(o.seed));
  const base = ['-w', o.workers, '-g', '2', '-s', '256KiB', '--steps', o.steps, '--compute-ms', o.computeMs];
  let hits = 0;
  let rightKind = 0;
  let reported = 0;
  let correct = 0;
  let failed = 0;
  const delays: number[] = [];
  for (let i = 0; i < Number(o.trials); i++) {
    const node = rand() < 0.5;
    const who = Math.floor(rand() * W);
    const severity = 1.5 + rand() * 3.5;
    const spec = node
      ? `slow:rank=${who}:factor=${severity.toFixed(2)}:step=${onset}`
      : // A link slowed by about `severity`: delay in proportion to the step's normal link time.
        `slow-link:from=${who}:step=${onset}:delayMs=${Math.round(5 * severity)}`;
    const r = await run([...base, '--seed', String(i + 1), '--inject', spec], 300_000);
    if (!r.ok) failed++;
    const match = (s: Found) => (node ? s.kind === 'node' && s.rank === who : s.kind === 'link' && s.link?.[0] === who);
    const near = (s: Found) => (node ? s.rank === who || s.link?.[0] === who : s.link?.[0] === who || s.rank === who || s.rank === (who + 1) % W);
    const hit = r.stragglers.find((s) => match(s) && s.detectedAtStep - onset <= 5);
    reported += r.stragglers.length;
    correct += r.stragglers.filter(match).length;
    if (hit) {
      hits++;
      delays.push(hit.detectedAtStep - onset);
    }
    if (r.stragglers.some(near) && r.stragglers.filter(near).every(match)) rightKind++;
    console.log(`  trial ${i + 1}: ${spec} -> ${r.stragglers.map((s) => (s.kind === 'node' ? `node ${s.rank}` : `link ${s.link?.join('->')}`) + `@${s.detectedAtStep}`).join(', ') || 'nothing'}`);
  }
  let falsePositives = 0;
  for (let i = 0; i < Number(o.clean); i++) {
    const r = await run([...base, '--seed', String(1000 + i), '--inject', `jitter:maxMs=${o.jitterMs}`], 300_000);
    if (!r.ok) failed++;
    falsePositives += r.stragglers.length;
    if (r.stragglers.length) console.log(`  clean ${i + 1}: false positives ${r.stragglers.map((s) => JSON.stringify(s)).join(' ')}`);
  }
  const trials = Number(o.trials);
  delays.sort((a, b) => a - b);
  console.log('');
  console.log(`recall within 5 steps      ${((hits / trials) * 100).toFixed(1)}% (${hits}/${trials})`);
  console.log(`node and link told apart   ${((rightKind / trials) * 100).toFixed(1)}%`);
  console.log(`precision                  ${reported ? ((correct / reported) * 100).toFixed(1) : 'n/a'}% (${correct}/${reported} reports)`);
  console.log(`false positives per clean  ${(falsePositives / Number(o.clean)).toFixed(2)} (${falsePositives} in ${o.clean} clean runs with jitter ${o.jitterMs} ms)`);
  console.log(`median steps to detection  ${delays.length ? delays[Math.floor((delays.length - 1) / 2)] : 'n/a'}`);
  process.exitCode = failed > 0 ? 1 : 0;
}

void main();
