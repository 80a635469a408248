// Memory figures of this process.
import { readFileSync } from 'node:fs';

/** Pss of this process from /proc/self/smaps_rollup (Linux), in MB; null elsewhere. */
export function selfPssMB(): number | null {
  try {
    const m = /^Pss:\s+(\d+) kB/m.exec(readFileSync('/proc/self/smaps_rollup', 'utf8'));
    return m ? Number(m[1]) / 1024 : null;
  } catch {
    return null;
  }
}
