// The disk tier of checkpoints: one file per card group (named by its first card, which keeps its
// id when ranks are renumbered or reordered) and step, written atomically (temporary file, fsync, rename, fsync of the folder) with a SHA-256 of the contents checked on read.
import { createHash } from 'node:crypto';
import { mkdir, open, readdir, readFile, rename, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { RingswarmError } from '../protocol/errors.js';

const MAGIC = 'RSCKPT1\n';
/** Files kept per owner: the newest may not be complete everywhere yet. */
const KEEP = 2;

function fileName(owner: number, step: number): string {
  return `cards-${owner}-step-${String(step).padStart(9, '0')}.ckpt`;
}

async function write(dir: string, owner: number, step: number, states: readonly Uint8Array[]): Promise<void> {
  await mkdir(dir, { recursive: true });
  const header = Buffer.from(`${MAGIC}${JSON.stringify({ owner, step, sizes: states.map((s) => s.byteLength) })}\n`);
  const hash = createHash('sha256').update(header);
  for (const s of states) hash.update(s);
  const digest = Buffer.from(hash.digest('hex') + '\n');
  const final = join(dir, fileName(owner, step));
  const tmp = `${final}.tmp-${process.pid}`;
  const fh = await open(tmp, 'w');
  try {
    await fh.writev([header, ...states.map((s) => Buffer.from(s.buffer, s.byteOffset, s.byteLength)), digest]);
    await fh.sync();
  } finally {
    await fh.close();
  }
  await rename(tmp, final);
  const d = await open(dir, 'r');
  try {
    await d.sync();
  } finally {
    await d.close();
  }
  // Keep the newest few of this owner.
  const mine = (await readdir(dir)).filter((f) => f.startsWith(`cards-${owner}-step-`) && f.endsWith('.ckpt')).sort();
  for (const f of mine.slice(0, Math.max(0, mine.length - KEEP))) await rm(join(dir, f), { force: true });
}

async function read(dir: string, owner: number, step: number): Promise<Uint8Array[]> {
  const path = join(dir, fileName(owner, step));
  let buf: Buffer;
  try {
    buf = await readFile(path);
  } catch (e) {
    throw new RingswarmError('RS_ERR_PROTOCOL', `no checkpoint file ${path}: ${(e as Error).message}`);
  }
  const bad = (why: string) => new RingswarmError('RS_ERR_CHECKSUM', `checkpoint file ${path}: ${why}`);
  if (buf.subarray(0, MAGIC.length).toString() !== MAGIC) throw bad('not a ringswarm checkpoint');
  const nl = buf.indexOf('\n', MAGIC.length);
  const meta = JSON.parse(buf.subarray(MAGIC.length, nl).toString()) as { owner: number; step: number; sizes: number[] };
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

export const checkpointDisk = { write, read };
