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
//
// Or, where the native kernels are built, the owner maps a slot (map) and keeps its live card
// states in it: it is marked 'being written' while they change, and a checkpoint is the header
// marked complete (commit), not a copy of the states. Its readers still read() it. A slot once
// mapped stays mapped (until removed or closed): here an 8 MiB slot took 1.1 ms of CPU to map and
// unmap, about what the write of its states it saves took (1.3 ms).
import { closeSync, ftruncateSync, fstatSync, mkdirSync, openSync, readdirSync, readSync, rmSync, statfsSync, statSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import type { Elements } from '../collective/dtypes.js';
import { nativeMemory } from '../native/kernels.js';

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
  /**
   * Zero-copy, where these slots can be mapped (else absent, or null returned): slot `name` marked
   * being written (it reads as nothing until commit), and its `cards` states of `cardBytes` each
   * as views of the slot itself, for `owner` to keep its live states in.
   */
  map?(name: string, owner: number, cards: number, cardBytes: number): Uint8Array[] | null;
  /** Slot `name`, mapped, is `owner`'s checkpoint `step` as its views hold it now: marked complete. */
  commit?(name: string, owner: number, step: number): void;
  /** Bytes of the slots mapped now (each resident: its pages are all written when it is mapped). */
  mappedBytes?(): number;
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
export function fileSlots(dir: string, memory = nativeMemory): SharedSlots & { close(): void } {
  const open = new Map<string, { fd: number; gen: number }>();
  /** Slots mapped now, with the header they were marked with. */
  const mapped = new Map<string, { buffer: ArrayBuffer; h: Omit<Header, 'complete' | 'step'> }>();
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
  const fileOf = (name: string) => {
    let f = open.get(name);
    if (!f) open.set(name, (f = { fd: openSync(pathOf(name), 'w+'), gen: 0 }));
    return f;
  };
  /** The views map() gave of slot `name` read as empty from now on. */
  const unmap = (name: string) => {
    const m = mapped.get(name);
    if (m) memory?.unmap(m.buffer);
    mapped.delete(name);
  };
  const writeSlot = (name: string, owner: number, step: number, states: readonly Elements[]) => {
    const f = fileOf(name);
    const cardBytes = states[0]?.byteLength ?? 0;
    const h = { owner, step, cards: states.length, cardBytes, gen: ++f.gen };
    writeAll(f.fd, encode({ ...h, complete: false }), 0);
    states.forEach((s, j) => writeAll(f.fd, bytes(s), DATA_OFFSET + j * cardBytes));
    writeAll(f.fd, encode({ ...h, complete: true }), 0);
  };
  const mapSlot = (name: string, owner: number, cards: number, cardBytes: number): Uint8Array[] => {
    const f = fileOf(name);
    const h = { owner, cards, cardBytes, gen: ++f.gen };
    writeAll(f.fd, encode({ ...h, step: 0, complete: false }), 0);
    const bytes = cards * cardBytes;
    let m = mapped.get(name);
    if (m && m.buffer.byteLength !== bytes) unmap(name), (m = undefined);
    if (!m) {
      // Every page written once, so a full /dev/shm is an error here, never a SIGBUS in a store.
      if (fstatSync(f.fd).size !== DATA_OFFSET + bytes) {
        ftruncateSync(f.fd, DATA_OFFSET);
        const zeros = new Uint8Array(Math.min(bytes, 1 << 20));
        for (let at = 0; at < bytes; at += zeros.byteLength) writeAll(f.fd, zeros.subarray(0, Math.min(zeros.byteLength, bytes - at)), DATA_OFFSET + at);
      }
      mapped.set(name, (m = { buffer: memory!.map(f.fd, DATA_OFFSET, bytes), h }));
    }
    m.h = h;
    const buffer = m.buffer;
    return Array.from({ length: cards }, (_, j) => new Uint8Array(buffer, j * cardBytes, cardBytes));
  };
  const failed = (what: string, name: string, e: unknown) => new Error(`cannot ${what} checkpoint slot ${pathOf(name)}: ${(e as Error).message}`, { cause: e });
  return {
    write(name, owner, step, states) {
      try {
        writeSlot(name, owner, step, states);
      } catch (e) {
        throw failed('write', name, e);
      }
    },
    ...(memory && {
      map(name: string, owner: number, cards: number, cardBytes: number) {
        // Nothing to map (no card bytes): the copy is as cheap.
        if (cards * cardBytes === 0) return null;
        try {
          return mapSlot(name, owner, cards, cardBytes);
        } catch (e) {
          throw failed('map', name, e);
        }
      },
      commit(name: string, owner: number, step: number) {
        const m = mapped.get(name);
        if (!m || m.h.owner !== owner) throw new Error(`checkpoint slot ${pathOf(name)} is not mapped by owner ${owner}`);
        writeAll(open.get(name)!.fd, encode({ ...m.h, step, complete: true }), 0);
      },
      mappedBytes: () => {
        let n = 0;
        for (const m of mapped.values()) n += m.buffer.byteLength;
        return n;
      },
    }),
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
      unmap(name);
      const f = open.get(name);
      if (f) closeSync(f.fd);
      open.delete(name);
      rmSync(pathOf(name), { force: true });
    },
    close() {
      for (const name of [...mapped.keys()]) unmap(name);
      for (const f of open.values()) closeSync(f.fd);
      open.clear();
    },
  };
}

/** A slot of memorySlots: its states' bytes, and whether they are a complete checkpoint. */
export interface MemorySlot {
  owner: number;
  step: number;
  complete: boolean;
  bytes: Uint8Array[];
}

/** Slots in memory, shared by every simulated worker given the same map; mapped as they are (zero-copy, as files are where they can be). */
export function memorySlots(map = new Map<string, MemorySlot>()): SharedSlots {
  const entry = (name: string, owner: number, step: number) => {
    const e = map.get(name);
    return e && e.complete && e.owner === owner && e.step === step ? e : undefined;
  };
  return {
    write: (name, owner, step, states) => void map.set(name, { owner, step, complete: true, bytes: states.map((s) => bytes(s).slice()) }),
    read(name, owner, step, states) {
      const e = entry(name, owner, step);
      if (!e || e.bytes.length !== states.length || !states.every((s, j) => s.byteLength === e.bytes[j]!.byteLength)) return false;
      states.forEach((s, j) => bytes(s).set(e.bytes[j]!));
      return true;
    },
    holds: (name, owner, step) => !!entry(name, owner, step),
    remove: (name) => void map.delete(name),
    map(name, owner, cards, cardBytes) {
      const e = map.get(name);
      const reuse = e && e.bytes.length === cards && e.bytes.every((b) => b.byteLength === cardBytes);
      const slot: MemorySlot = { owner, step: 0, complete: false, bytes: reuse ? e.bytes : Array.from({ length: cards }, () => new Uint8Array(cardBytes)) };
      map.set(name, slot);
      return slot.bytes;
    },
    commit(name, owner, step) {
      const e = map.get(name);
      if (!e || e.owner !== owner) throw new Error(`checkpoint slot ${name} is not mapped by owner ${owner}`);
      e.step = step;
      e.complete = true;
    },
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
