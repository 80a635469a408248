// The HTML report of a run, a sim or a bench (`--html FILE`), for the drivers: one call each. The
// path is logged ("report: FILE"); a file that cannot be written is logged too, and the run's own
// report (its summary, its JSON) still comes.
import type { BenchReport, RunReport } from '../config.js';
import type { CoordinatorMachine } from '../machine.js';
import { writeHtml } from './html.js';
import { buildBenchView, buildRunView, runFacts, type View } from './view.js';

async function write(file: string, view: View, log: (line: string) => void): Promise<void> {
  try {
    log(`report: ${await writeHtml(file, view)}`);
  } catch (e) {
    log(`report: could not write ${file}: ${(e as Error).message}`);
  }
}

/** The run's page to `file`; `t0` and `now` are on the machine's clock. */
export function writeRunHtml(file: string, report: RunReport, machine: CoordinatorMachine, t0: number, now: number, log: (line: string) => void): Promise<void> {
  const title = `ringswarm ${report.simulated ? 'sim' : 'run'}: ${report.workers} workers x ${report.cardsPerWorker} cards, seed ${report.seed}`;
  return write(file, buildRunView(report, runFacts(machine, t0, now), title), log);
}

export function writeBenchHtml(file: string, report: BenchReport, log: (line: string) => void): Promise<void> {
  return write(file, buildBenchView(report, `ringswarm bench: ${report.collective} on ${report.workers} workers x ${report.cardsPerWorker} cards`), log);
}
