// The job's state digest, the figure that says two runs computed the same thing. Pure, in
// collective so that the coordinator (which reports it) and the worker (which feeds it) share it
// without the coordinator importing the worker.
import { createHash } from 'node:crypto';

/** The job's digest: SHA-256 over every card's state digest, in card order. */
export function jobDigest(cardDigests: readonly string[]): string {
  const h = createHash('sha256');
  for (const d of cardDigests) h.update(d);
  return h.digest('hex');
}
