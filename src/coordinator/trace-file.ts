// --trace FILE: the trace written to disk, piece by piece (a big one is hundreds of MB), into a
// temporary file renamed into place: a reader never sees half a trace.
import { mkdir, open, rename, rm } from 'node:fs/promises';
import { dirname } from 'node:path';
import { RingswarmUsageError } from '../protocol/errors.js';

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
