// The disk tier of checkpoints: one file per card group (named by its first card, which keeps its
// id when ranks are renumbered or reordered) and step, written atomically (temporary file, every
// write's byte count checked, fsync, rename, fsync of the folder) with a SHA-256 of the contents
// checked on read. A write that fails (a full or read-only disk) removes its temporary and throws a
// CheckpointDiskError: a torn file is never given the final name.
import { createHash } from 'node:crypto';
import * as nodeFs from 'node:fs/promises';
import { join } from 'node:path';
import { RingswarmError } from '../protocol/errors.js';

const MAGIC = 'RSCKPT1\n';
/** Files kept per owner: the newest may not be complete everywhere yet. */
const KEEP = 2;

/** An open file, as much of it as the disk tier uses. */
export interface DiskFile {
  write(buf: Uint8Array, offset: number, length: number, position: number): Promise<{ bytesWritten: number }>;
  sync(): Promise<void>;
  close(): Promise<void>;
}

/** The file system calls of the disk tier (node:fs/promises; tests inject failing ones). */
export interface DiskFs {
  mkdir(dir: string): Promise<void>;
  readdir(dir: string): Promise<string[]>;
  open(path: string, flags: 'w' | 'r'): Promise<DiskFile>;
  rename(from: string, to: string): Promise<void>;
  rm(path: string): Promise<void>;
  readFile(path: string): Promise<Uint8Array>;
}

export const nodeDiskFs: DiskFs = {
  mkdir: async (dir) => void (await nodeFs.mkdir(dir, { recursive: true })),
  readdir: (dir) => nodeFs.readdir(dir),
  open: async (path, flags) => {
    const fh = await nodeFs.open(path, flags);
    return {
      write: (buf, offset, length, position) => fh.write(buf, offset, length, position),
      sync: () => fh.sync(),
      close: () => fh.close(),
    };
  },
  rename: (from, to) => nodeFs.rename(from, to),
  rm: (path) => nodeFs.rm(path, { force: true }),
  readFile: (path) => nodeFs.readFile(path),
};

/** The disk tier could not write (or could not be made ready): `path` is what failed. */
export class CheckpointDiskError extends Error {
  readonly code = 'RS_ERR_CHECKPOINT_DISK';
  constructor(
    readonly path: string,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
    this.name = 'CheckpointDiskError';
  }
}

function fileName(owner: number, step: number): string {
  return `cards-${owner}-step-${String(step).padStart(9, '0')}.ckpt`;
}

/** `cards-<owner>-step-<step>.ckpt`, or its temporary `….ckpt.tmp-<pid>`. */
const FILE_PATTERN = /^cards-(\d+)-step-(\d+)\.ckpt(?:\.tmp-(\d+))?$/;

function why(e: unknown): string {
  return e instanceof Error ? e.message : String(e);
}

/** Write all of `buf` at `position`, however many calls it takes; a write that makes no progress is an error. */
async function writeAll(fh: DiskFile, buf: Uint8Array, position: number): Promise<number> {
  let done = 0;
  while (done < buf.byteLength) {
    const { bytesWritten } = await fh.write(buf, done, buf.byteLength - done, position + done);
    if (!(bytesWritten > 0)) throw new Error(`short write: ${position + done} of the file's bytes written, then ${bytesWritten}`);
    done += bytesWritten;
  }
  return done;
}

/**
 * Write `parts` to a new file at `path`, every byte checked, and fsync it. On any error the file is
 * closed and removed, and the error thrown: a file is whole and synced, or it is not there.
 */
async function writeSynced(fs: DiskFs, path: string, parts: readonly Uint8Array[]): Promise<void> {
  const expected = parts.reduce((a, p) => a + p.byteLength, 0);
  let fh: DiskFile | null = null;
  try {
    fh = await fs.open(path, 'w');
    let at = 0;
    for (const p of parts) at += await writeAll(fh, p, at);
    if (at !== expected) throw new Error(`${at} bytes written of ${expected}`);
    await fh.sync();
    const h = fh;
    fh = null;
    await h.close();
  } catch (e) {
    await fh?.close().catch(() => {});
    await fs.rm(path).catch(() => {});
    throw e;
  }
}

async function syncDir(fs: DiskFs, dir: string): Promise<void> {
  const d = await fs.open(dir, 'r');
  try {
    await d.sync();
  } finally {
    await d.close();
  }
}

function diskTier(fs: DiskFs) {
  async function write(dir: string, owner: number, step: number, states: readonly Uint8Array[]): Promise<void> {
    const final = join(dir, fileName(owner, step));
    const tmp = `${final}.tmp-${process.pid}`;
    const fail = (what: string, e: unknown) =>
      new CheckpointDiskError(final, `checkpoint step ${step} of cards from ${owner}: ${what} ${final}: ${why(e)}`, { cause: e });
    let names: string[];
    try {
      await fs.mkdir(dir);
      names = await fs.readdir(dir);
    } catch (e) {
      throw fail('cannot list the folder of', e);
    }
    // Temporaries of this owner left by a writer that died (a killed worker, an older step) or by us: they only take space.
    for (const f of names) {
      const m = FILE_PATTERN.exec(f);
      if (m && m[3] !== undefined && Number(m[1]) === owner && (Number(m[2]) < step || Number(m[3]) === process.pid)) await fs.rm(join(dir, f)).catch(() => {});
    }
    const header = Buffer.from(`${MAGIC}${JSON.stringify({ owner, step, sizes: states.map((s) => s.byteLength) })}\n`);
    const hash = createHash('sha256').update(header);
    for (const s of states) hash.update(s);
    const digest = Buffer.from(hash.digest('hex') + '\n');
    const parts = [header, ...states.map((s) => new Uint8Array(s.buffer, s.byteOffset, s.byteLength)), digest];
    try {
      await writeSynced(fs, tmp, parts);
    } catch (e) {
      throw fail('could not write', e);
    }
    try {
      await fs.rename(tmp, final);
    } catch (e) {
      await fs.rm(tmp).catch(() => {});
      throw fail('could not rename into', e);
    }
    try {
      await syncDir(fs, dir);
    } catch (e) {
      // The file is whole (it was synced before the rename), but its name may not survive a crash.
      throw fail('could not sync the folder of', e);
    }
    // Keep the newest few of this owner.
    const mine = [...new Set([...names, fileName(owner, step)])].filter((f) => f.startsWith(`cards-${owner}-step-`) && f.endsWith('.ckpt')).sort();
    for (const f of mine.slice(0, Math.max(0, mine.length - KEEP))) await fs.rm(join(dir, f)).catch(() => {});
  }

  async function read(dir: string, owner: number, step: number): Promise<Uint8Array[]> {
    const path = join(dir, fileName(owner, step));
    let buf: Buffer;
    try {
      const raw = await fs.readFile(path);
      buf = Buffer.isBuffer(raw) ? raw : Buffer.from(raw.buffer, raw.byteOffset, raw.byteLength);
    } catch (e) {
      throw new RingswarmError('RS_ERR_PROTOCOL', `no checkpoint file ${path}: ${(e as Error).message}`);
    }
    const bad = (why: string) => new RingswarmError('RS_ERR_CHECKSUM', `checkpoint file ${path}: ${why}`);
    if (buf.subarray(0, MAGIC.length).toString() !== MAGIC) throw bad('not a ringswarm checkpoint');
    const nl = buf.indexOf('\n', MAGIC.length);
    let meta: { owner: number; step: number; sizes: number[] };
    try {
      meta = JSON.parse(buf.subarray(MAGIC.length, nl).toString()) as typeof meta;
    } catch {
      throw bad('unreadable header (torn or corrupted)');
    }
    if (meta.owner !== owner || meta.step !== step) throw bad(`holds owner ${meta.owner} step ${meta.step}`);
    let off = nl + 1;
    const states = meta.sizes.map((n) => {
      const s = new Uint8Array(n);
      s.set(buf.subarray(off, off + n));
      off += n;
      return s;
    });
    const hash = createHash('sha256').update(buf.subarray(0, nl + 1));
    for (const s of states) hash.update(s);
    if (buf.subarray(off).toString().trim() !== hash.digest('hex')) throw bad('SHA-256 does not match (torn or corrupted)');
    return states;
  }

  /**
   * Make sure checkpoints can be written to `dir` before any worker starts: create it, write,
   * fsync and remove a probe file. Throws a CheckpointDiskError saying what failed.
   */
  async function probe(dir: string): Promise<void> {
    const file = join(dir, `.ringswarm-probe-${process.pid}`);
    try {
      await fs.mkdir(dir);
    } catch (e) {
      throw new CheckpointDiskError(dir, `cannot create ${dir}: ${why(e)}`, { cause: e });
    }
    try {
      await writeSynced(fs, file, [Buffer.from('ringswarm: can checkpoints be written here?\n')]);
    } catch (e) {
      throw new CheckpointDiskError(dir, `cannot write in ${dir}: ${why(e)}`, { cause: e });
    }
    try {
      await fs.rm(file);
    } catch (e) {
      throw new CheckpointDiskError(dir, `cannot remove files in ${dir}: ${why(e)}`, { cause: e });
    }
  }

  return { write, read, probe };
}

/** The disk tier on another file system (tests inject one that fails). */
export const checkpointDiskOn = diskTier;
export const checkpointDisk = diskTier(nodeDiskFs);
