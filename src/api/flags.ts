// Flag parsers: each one names what it accepts, and a bad value ends the command with status 2.
import { InvalidArgumentError } from 'commander';
import { DTYPES, REDUCE_OPS, type DType, type ReduceOp } from '../collective/dtypes.js';
import { ALLREDUCE_ALGOS, COLLECTIVES, type AllreduceAlgo, type CollectiveKind } from '../collective/types.js';
import { parseSize } from '../protocol/units.js';

export function intIn(min: number, max = Number.MAX_SAFE_INTEGER) {
  return (text: string): number => {
    const n = Number(text);
    if (!/^-?\d+$/.test(text.trim()) || !Number.isSafeInteger(n) || n < min || n > max) {
      throw new InvalidArgumentError(`expected an integer from ${min}${max === Number.MAX_SAFE_INTEGER ? ' up' : ` to ${max}`}`);
    }
    return n;
  };
}

export function numberIn(min: number, max = Number.MAX_VALUE) {
  return (text: string): number => {
    const n = Number(text);
    if (text.trim() === '' || !Number.isFinite(n) || n < min || n > max) {
      throw new InvalidArgumentError(`expected a number from ${min}${max === Number.MAX_VALUE ? ' up' : ` to ${max}`}`);
    }
    return n;
  };
}

export function size(text: string): number {
  try {
    return parseSize(text);
  } catch (e) {
    throw new InvalidArgumentError((e as Error).message);
  }
}

function oneOf<T extends string>(values: readonly T[]) {
  return (text: string): T => {
    if (!(values as readonly string[]).includes(text)) throw new InvalidArgumentError(`expected one of ${values.join(', ')}`);
    return text as T;
  };
}

export const dtype: (t: string) => DType = oneOf(DTYPES);
export const reduceOp: (t: string) => ReduceOp = oneOf(REDUCE_OPS);
export const collective: (t: string) => CollectiveKind = oneOf(COLLECTIVES);
export const runAlgo: (t: string) => AllreduceAlgo | 'auto' = oneOf(['auto', ...ALLREDUCE_ALGOS]);

/** A comma list of all-reduce algorithms ("ring,rd"), or "all". */
export function algoList(text: string): AllreduceAlgo[] {
  if (text.trim() === 'all') return [...ALLREDUCE_ALGOS];
  const one = oneOf(ALLREDUCE_ALGOS);
  const list = text.split(',').map((t) => one(t.trim()));
  return [...new Set(list)];
}

/** A rate: a size per second ("100MiB", "1G"); 0: no cap. */
export function rate(text: string): number {
  return text.trim() === '0' ? 0 : size(text);
}

export function host(text: string): string {
  if (!/^[A-Za-z0-9.:[\]-]+$/.test(text)) throw new InvalidArgumentError('expected a host name or IP address');
  return text;
}

export function flag01(text: string): boolean {
  if (text !== '0' && text !== '1') throw new InvalidArgumentError('expected 0 or 1');
  return text === '1';
}

/** "k/m" with 1 <= k <= m <= 64. */
export function kOfM(text: string): [number, number] {
  const m = /^(\d+)\/(\d+)$/.exec(text.trim());
  const k = m ? Number(m[1]) : NaN;
  const n = m ? Number(m[2]) : NaN;
  if (!m || k < 1 || k > n || n > 64) throw new InvalidArgumentError('expected k/m with 1 <= k <= m <= 64, e.g. 4/5');
  return [k, n];
}

/** A usage error found after parsing (conflicting flags): printed like commander's, status 2. One class with the API's. */
export { RingswarmUsageError as UsageError } from './errors.js';
