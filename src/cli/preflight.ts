// Checks made before any worker starts, each a usage error (status 2) with one clear line: the
// checkpoint folder can be written, the control port is free, the sizes fit in memory.
import { createServer } from 'node:net';
import { freemem, totalmem } from 'node:os';
import { checkpointDisk, CheckpointDiskError } from '../runtime/checkpoint-disk.js';
import { estimateMemory, memoryVerdict, type MemoryJob } from './memory.js';
import { UsageError } from '../api/flags.js';

/** --checkpoint-dir must exist or be creatable, and take a file: create it, write, fsync and remove a probe. */
export async function checkCheckpointDir(dir: string, probe = checkpointDisk.probe): Promise<void> {
  try {
    await probe(dir);
  } catch (e) {
    if (e instanceof CheckpointDiskError) throw new UsageError(`--checkpoint-dir ${dir}: ${e.message}`);
    throw e;
  }
}

/** A fixed --port must be free (two coordinators on one port is bad input, not a failed run). */
export async function checkPortFree(host: string, port: number): Promise<void> {
  if (port === 0) return;
  await new Promise<void>((resolve, reject) => {
    const s = createServer();
    s.once('error', (e: NodeJS.ErrnoException) => {
      if (e.code === 'EADDRINUSE') reject(new UsageError(`--port ${port}: ${host}:${port} is already in use (another coordinator?)`));
      else if (e.code === 'EACCES') reject(new UsageError(`--port ${port}: not permitted to listen on ${host}:${port}`));
      else if (e.code === 'EADDRNOTAVAIL') reject(new UsageError(`--host ${host}: not an address of this machine`));
      else reject(e);
    });
    s.listen({ host, port, exclusive: true }, () => s.close(() => resolve()));
  });
}

/** Refuse sizes that cannot fit in this machine's memory; warn on stderr when they take more than half of it. */
export function checkMemory(job: MemoryJob, sizeFlag = '--size', warn: (line: string) => void = (l) => process.stderr.write(`warning: ${l}\n`)): void {
  const v = memoryVerdict(job, estimateMemory(job), { totalBytes: totalmem(), availableBytes: freemem() }, sizeFlag);
  if (v.refuse) throw new UsageError(v.refuse);
  if (v.warn) warn(v.warn);
}
