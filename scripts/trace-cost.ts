// What --trace costs a run: the same run with and without it, interleaved and repeated (this
// machine's speed drifts between runs: compare only within one run of this script). Prints per run
// the wall time, startup, step p50 and all-reduce p50, the trace's size and events, then the medians.
//
//   node dist/scripts/trace-cost.js [--workers 64] [--cards 8] [--size 256KiB] [--steps 20] [--repeats 3]
import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs, promisify } from 'node:util';

const { values } = parseArgs({
  options: {
    workers: { type: 'string', default: '64' },
    cards: { type: 'string', default: '8' },
    size: { type: 'string', default: '256KiB' },
    steps: { type: 'string', default: '20' },
    repeats: { type: 'string', default: '3' },
  },
});
const repeats = Number(values.repeats);
if (!Number.isInteger(repeats) || repeats < 1) {
  process.stderr.write(`error: --repeats ${values.repeats}: expected an integer >= 1\n`);
  process.exit(2);
}

const CLI = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', 'src', 'cli', 'main.js');
const dir = mkdtempSync(path.join(tmpdir(), 'ringswarm-trace-cost-'));
const run = promisify(execFile);

interface Row {
  trace: boolean;
  wallMs: number;
  startupMs: number;
  stepP50: number;
  allreduceP50: number;
  bytes: number | null;
  events: number | null;
}

async function once(trace: boolean, i: number): Promise<Row> {
  const json = path.join(dir, `r${i}.json`);
  const file = path.join(dir, `t${i}.json`);
  const args = [CLI, 'run', '-w', values.workers!, '-g', values.cards!, '-s', values.size!, '--steps', values.steps!, '--json', json, ...(trace ? ['--trace', file] : [])];
  try {
    await run(process.execPath, args, { maxBuffer: 64 << 20 });
  } catch (e) {
    throw new Error(`run ${i} failed: ${(e as { stderr?: string }).stderr?.slice(-2000) ?? String(e)}`);
  }
  const r = JSON.parse(readFileSync(json, 'utf8'));
  const row: Row = { trace, wallMs: r.wallMs, startupMs: r.startupMs, stepP50: r.stepMs.p50, allreduceP50: r.allreduceMs.p50, bytes: trace ? statSync(file).size : null, events: trace ? r.trace.events : null };
  rmSync(file, { force: true });
  return row;
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor((xs.length - 1) / 2)]!;
const rows: Row[] = [];
process.stdout.write(`# --trace cost: run -w ${values.workers} -g ${values.cards} -s ${values.size} --steps ${values.steps}, with and without, interleaved, ${repeats} each\n`);
process.stdout.write('trace  wall ms  startup ms  step p50 ms  allreduce p50 ms  trace size  events\n');
for (let i = 0; i < repeats * 2; i++) {
  const row = await once(i % 2 === 1, i);
  rows.push(row);
  process.stdout.write(
    `${row.trace ? 'on ' : 'off'}    ${String(row.wallMs).padStart(7)}  ${String(row.startupMs).padStart(10)}  ${row.stepP50.toFixed(1).padStart(11)}  ${row.allreduceP50.toFixed(1).padStart(16)}  ${row.bytes === null ? '' : `${(row.bytes / 2 ** 20).toFixed(2)} MiB`.padStart(10)}  ${row.events ?? ''}\n`,
  );
}
const of = (t: boolean, k: 'wallMs' | 'stepP50' | 'allreduceP50') => median(rows.filter((r) => r.trace === t).map((r) => r[k]));
for (const k of ['wallMs', 'stepP50', 'allreduceP50'] as const) {
  process.stdout.write(`median ${k}: off ${of(false, k).toFixed(1)}, on ${of(true, k).toFixed(1)} (${(of(true, k) / of(false, k)).toFixed(3)}x)\n`);
}
rmSync(dir, { recursive: true, force: true });
