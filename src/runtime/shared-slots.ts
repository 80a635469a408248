// Checkpoint slots shared by the workers of one host (the SharedSlots of src/worker/checkpoints.ts):
// a file each in a folder of /dev/shm that the coordinator makes for the run and removes after it,
// or a map for the simulator. A slot file is a 32-byte header in a page of its own, then the card
// states one after the other from offset 4096 (page-aligned: unaligned, the same write into tmpfs
// took 2.3x as long here):
//
// offset size field
//      0  u32 magic     0x4b435352 ('RSCK')
//      4  u32 state     1 complete, 0 being written
//      8  u32 gen       writes so far (a reader checks it did not change while it read)
//     12  u32 owner     the owner's first card
//     16  u32 step
//     20  u32 cards
//     24  f64 cardBytes
//
// The owner writes the header as 'being written', the states, then the header as complete: a
// writer that dies halfway leaves a slot that reads as nothing. Nothing in it is checksummed: it
// never crosses a link (a copy served to a replacement goes in checksummed frames).
import { closeSync, mkdirSync, openSync, readdirSync, readSync, rmSync, statfsSync, statSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import type { Elements } from '../collective/dtypes.js';

/**
 * Checkpoint slots every worker of one host can read: files in a folder of /dev/shm in a run
 * (src/runtime/shared-slots.ts), a map in the simulator. The owner writes a slot; its successor
 * keeps the slot's name, not a copy, and reads it only to serve a replacement. A slot says whose
 * checkpoint of which step it holds, and whether it is complete: a write in progress or torn by a
 * crash reads as nothing.
 */
export interface SharedSlots {
  /** Write `states` into slot `name` as `owner`'s checkpoint `step`; complete when this returns. */
  write(name: string, owner: number, step: number, states: readonly Elements[]): void;
  /** Read slot `name` into `states` if it holds `owner`'s checkpoint `step`, complete and not rewritten meanwhile. */
  read(name: string, owner: number, step: number, states: Elements[]): boolean;
  /** Slot `name` holds `owner`'s checkpoint `step`, complete (its header alone is read). */
  holds(name: string, owner: number, step: number): boolean;
  /** Slot `name` is needed no more (an owner's earlier process wrote it): free it. */
  remove(name: string): void;
}

/** Slots an owner writes in turn: the two checkpoints a store keeps (KEEP), and one more to write the next into. */
export const SHARED_SLOTS = 3;

const MAGIC = 0x4b435352;
export const SLOT_HEADER_BYTES = 32;
/** Where the states start: the page after the header's. */
const DATA_OFFSET = 4096;

interface Header {
  complete: boolean;
  gen: number;
  owner: number;
  step: number;
  cards: number;
  cardBytes: number;
}

function encode(h: Header): Uint8Array {
  const b = new Uint8Array(SLOT_HEADER_BYTES);
  const v = new DataView(b.buffer);
  v.setUint32(0, MAGIC, true);
  v.setUint32(4, h.complete ? 1 : 0, true);
  v.setUint32(8, h.gen >>> 0, true);
  v.setUint32(12, h.owner, true);
  v.setUint32(16, h.step, true);
  v.setUint32(20, h.cards, true);
  v.setFloat64(24, h.cardBytes, true);
  return b;
}

function decode(b: Uint8Array): Header | null {
  const v = new DataView(b.buffer, b.byteOffset, b.byteLength);
  if (b.byteLength < SLOT_HEADER_BYTES || v.getUint32(0, true) !== MAGIC) return null;
  return { complete: v.getUint32(4, true) === 1, gen: v.getUint32(8, true), owner: v.getUint32(12, true), step: v.getUint32(16, true), cards: v.getUint32(20, true), cardBytes: v.getFloat64(24, true) };
}

const bytes = (s: Elements) => new Uint8Array(s.buffer, s.byteOffset, s.byteLength);

function writeAll(fd: number, b: Uint8Array, position: number): void {
  for (let done = 0; done < b.byteLength; ) done += writeSync(fd, b, done, b.byteLength - done, position + done);
}

/** Reads `b.byteLength` bytes at `position`; false at the end of the file. */
function readAll(fd: number, b: Uint8Array, position: number): boolean {
  for (let done = 0; done < b.byteLength; ) {
    const n = readSync(fd, b, done, b.byteLength - done, position + done);
    if (n === 0) return false;
    done += n;
  }
  return true;
}

const matches = (h: Header | null, owner: number, step: number, states: readonly Elements[]): h is Header =>
  !!h && h.complete && h.owner === owner && h.step === step && h.cards === states.length && states.every((s) => s.byteLength === h.cardBytes);

/** Slots as files in `dir` (made by the coordinator). The writer keeps its files open. */
export function fileSlots(dir: string): SharedSlots & { close(): void } {
  const open = new Map<string, { fd: number; gen: number }>();
  const pathOf = (name: string) => join(dir, name);
  const header = (fd: number): Header | null => {
    const b = new Uint8Array(SLOT_HEADER_BYTES);
    return readAll(fd, b, 0) ? decode(b) : null;
  };
  const withFile = <T>(name: string, none: T, f: (fd: number) => T): T => {
    let fd: number;
    try {
      fd = openSync(pathOf(name), 'r');
    } catch {
      return none;
    }
    try {
      return f(fd);
    } finally {
      closeSync(fd);
    }
  };
  const writeSlot = (name: string, owner: number, step: number, states: readonly Elements[]) => {
    let f = open.get(name);
    if (!f) open.set(name, (f = { fd: openSync(pathOf(name), 'w+'), gen: 0 }));
    const cardBytes = states[0]?.byteLength ?? 0;
    const h = { owner, step, cards: states.length, cardBytes, gen: ++f.gen };
    writeAll(f.fd, encode({ ...h, complete: false }), 0);
    states.forEach((s, j) => writeAll(f.fd, bytes(s), DATA_OFFSET + j * cardBytes));
    writeAll(f.fd, encode({ ...h, complete: true }), 0);
  };
  return {
    write(name, owner, step, states) {
      try {
        writeSlot(name, owner, step, states);
      } catch (e) {
        throw new Error(`cannot write checkpoint slot ${pathOf(name)}: ${(e as Error).message}`, { cause: e });
      }
    },
    read(name, owner, step, states) {
      return withFile(name, false, (fd) => {
        const h = header(fd);
        if (!matches(h, owner, step, states)) return false;
        if (!states.every((s, j) => readAll(fd, bytes(s), DATA_OFFSET + j * h.cardBytes))) return false;
        const after = header(fd);
        return !!after && after.complete && after.gen === h.gen;
      });
    },
    holds(name, owner, step) {
      return withFile(name, false, (fd) => {
        const h = header(fd);
        return !!h && h.complete && h.owner === owner && h.step === step;
      });
    },
    remove(name) {
      const f = open.get(name);
      if (f) closeSync(f.fd);
      open.delete(name);
      rmSync(pathOf(name), { force: true });
    },
    close() {
      for (const f of open.values()) closeSync(f.fd);
      open.clear();
    },
  };
}

/** Slots in memory, shared by every simulated worker given the same map. */
export function memorySlots(map = new Map<string, { owner: number; step: number; states: Elements[] }>()): SharedSlots {
  return {
    write: (name, owner, step, states) => void map.set(name, { owner, step, states: states.map((s) => s.slice()) }),
    read(name, owner, step, states) {
      const e = map.get(name);
      if (!e || e.owner !== owner || e.step !== step || e.states.length !== states.length) return false;
      states.forEach((s, j) => s.set(e.states[j]!));
      return true;
    },
    holds: (name, owner, step) => {
      const e = map.get(name);
      return !!e && e.owner === owner && e.step === step;
    },
    remove: (name) => void map.delete(name),
  };
}

/** Where a run's slot folders go: the host's shared memory, when it has one. */
export const SHM_ROOT = '/dev/shm';
const RUN_DIR = /^ringswarm-(\d+)-[A-Za-z0-9]+$/;

/** Bytes free for files in `root`, or null when there is no such folder (not Linux). */
export function shmFreeBytes(root = SHM_ROOT): number | null {
  try {
    const s = statfsSync(root);
    return s.bavail * s.bsize;
  } catch {
    return null;
  }
}

/**
 * A new folder for a run's slots, `ringswarm-<this pid>-<random>` in `root`. Folders left by
 * coordinators that are gone (killed before they could remove theirs) are removed first.
 */
export function makeSlotDir(root = SHM_ROOT): string {
  for (const d of readdirSync(root)) {
    const m = RUN_DIR.exec(d);
    if (m && !alive(Number(m[1]))) rmSync(join(root, d), { recursive: true, force: true });
  }
  const dir = join(root, `ringswarm-${process.pid}-${Math.random().toString(36).slice(2, 10)}`);
  mkdirSync(dir, { mode: 0o700 });
  return dir;
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** The bytes of the slot files in `dir`. */
export function slotDirBytes(dir: string): number {
  let n = 0;
  for (const f of readdirSync(dir)) n += statSync(join(dir, f), { throwIfNoEntry: false })?.size ?? 0;
  return n;
}

export function removeSlotDir(dir: string): void {
  rmSync(dir, { recursive: true, force: true });
}
