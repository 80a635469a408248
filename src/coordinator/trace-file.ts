// --trace FILE: the trace written to disk, piece by piece (a big one is hundreds of MB), into a
// temporary file renamed into place: a reader never sees half a trace.
import { mkdir, open, rename, rm } from 'node:fs/promises';
import { dirname } from 'node:path';
import { RingswarmUsageError } from '../protocol/errors.js';
import type { CoordinatorMachine } from './machine.js';
import { RunTrace, type TraceOptions, type TraceRecorder, type TraceReport } from './trace.js';

export async function writeTraceFile(file: string, pieces: Iterable<string>): Promise<void> {
  const tmp = `${file}.${process.pid}.tmp`;
  try {
    await mkdir(dirname(file), { recursive: true });
    const fh = await open(tmp, 'w');
    try {
      for (const p of pieces) await fh.write(p);
    } finally {
      await fh.close();
    }
    await rename(tmp, file);
  } catch (e) {
    await rm(tmp, { force: true });
    throw new RingswarmUsageError(`--trace ${file}: ${(e as Error).message}`);
  }
}

/** Fail early, before a run starts, on a --trace path that cannot be written. */
export async function checkTraceFile(file: string): Promise<void> {
  const probe = `${file}.${process.pid}.probe`;
  try {
    await mkdir(dirname(file), { recursive: true });
    const fh = await open(probe, 'w');
    await fh.close();
    await rm(probe, { force: true });
  } catch (e) {
    throw new RingswarmUsageError(`--trace ${file}: ${(e as Error).message}`);
  }
}

/** A run's or sim's trace: the path checked now (a bad one stops the run before it starts). */
export async function openRunTrace(file: string, machine: CoordinatorMachine, o: TraceOptions): Promise<RunTrace> {
  await checkTraceFile(file);
  return new RunTrace(machine, o);
}

/**
 * The trace written (whatever the run's end: ok, failed, interrupted), and what the report says of
 * it; a file that cannot be written is said in `log` and costs the run nothing else.
 */
export async function closeTrace(file: string, trace: RunTrace | TraceRecorder, metadata: Record<string, unknown>, log: (line: string) => void): Promise<TraceReport | undefined> {
  const rec = trace instanceof RunTrace ? trace.rec : trace;
  try {
    await writeTraceFile(file, trace.chunks(metadata));
  } catch (e) {
    log(`warning: no trace written: ${(e as Error).message}`);
    return undefined;
  }
  return { file, ...rec.summary() };
}
