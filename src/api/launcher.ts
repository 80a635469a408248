// What `ringswarm worker` learns from its launcher: the coordinator, the token, and its rank and the
// job's world size, from flags or from the environment Slurm, Open MPI, PMIx, Kubernetes or a
// torchrun-style launcher sets. Pure: the environment and a file reader come in as values.
import type { LauncherKind } from '../protocol/names.js';
import { UsageError } from './flags.js';


/** Who gave a worker its rank, and which (null: spawned by the coordinator, or no rank given). */
export interface Launcher {
  kind: LauncherKind;
  rank: number | null;
}

/** The variables read for a rank, first match wins (deploy/ and the docs list the same). */
export const RANK_SOURCES: readonly { kind: LauncherKind; rank: string; size: string | null }[] = [
  { kind: 'env', rank: 'RINGSWARM_RANK', size: 'RINGSWARM_WORLD_SIZE' },
  { kind: 'slurm', rank: 'SLURM_PROCID', size: 'SLURM_NTASKS' },
  { kind: 'mpi', rank: 'OMPI_COMM_WORLD_RANK', size: 'OMPI_COMM_WORLD_SIZE' },
  { kind: 'pmix', rank: 'PMIX_RANK', size: null },
  { kind: 'kubernetes', rank: 'JOB_COMPLETION_INDEX', size: null },
  { kind: 'env', rank: 'RANK', size: 'WORLD_SIZE' },
];

export const COORDINATOR_ENV = 'RINGSWARM_COORDINATOR';
export const TOKEN_ENV = 'RINGSWARM_TOKEN';
export const TOKEN_FILE_ENV = 'RINGSWARM_TOKEN_FILE';
export const ADVERTISE_ENV = 'RINGSWARM_ADVERTISE_ADDR';

export interface WorkerIdentity {
  controlUrl: string;
  token: string;
  launcher: Launcher;
  /** The world size the launcher gave (null: none given). */
  worldSize: number | null;
  /** The address peers reach this worker's data server at (null: the address it binds). */
  advertise: string | null;
}

export interface WorkerFlags {
  url?: string;
  token?: string;
  tokenFile?: string;
  rank?: number;
  worldSize?: number;
  advertise?: string;
}

type Env = Readonly<Record<string, string | undefined>>;

const set = (v: string | undefined): v is string => v !== undefined && v.trim() !== '';

function natural(text: string, what: string): number {
  const t = text.trim();
  if (!/^\d+$/.test(t) || !Number.isSafeInteger(Number(t))) throw new UsageError(`${what} is '${text}', not a whole number >= 0`);
  return Number(t);
}

/** `ws://host:port`, `wss://…` or `host:port`, as a ws URL. */
export function coordinatorUrl(text: string, what: string): string {
  const t = text.trim();
  if (/^wss?:\/\/[^/\s]+/.test(t)) return t;
  if (/^[^/\s:]+:\d{1,5}$/.test(t) || /^\[[0-9a-f:.]+\]:\d{1,5}$/i.test(t)) return `ws://${t}`;
  throw new UsageError(`${what} ${text} is not ws://host:port or host:port`);
}

/** The launcher's rank and world size: --rank, else the first variable set (see RANK_SOURCES). */
export function launcherRank(flags: Pick<WorkerFlags, 'rank' | 'worldSize'>, env: Env): { launcher: Launcher; worldSize: number | null } {
  if (flags.rank !== undefined) return { launcher: { kind: 'flag', rank: flags.rank }, worldSize: flags.worldSize ?? null };
  for (const s of RANK_SOURCES) {
    const r = env[s.rank];
    if (!set(r)) continue;
    const rank = natural(r, s.rank);
    // A launcher that sets no size of its own (PMIx, a Kubernetes Indexed Job): RINGSWARM_WORLD_SIZE, if set.
    const sizeVar = s.size ?? 'RINGSWARM_WORLD_SIZE';
    const size = set(env[sizeVar]) ? natural(env[sizeVar]!, sizeVar) : null;
    if (size !== null && rank >= size) throw new UsageError(`${s.rank}=${rank} is not below ${sizeVar}=${size}`);
    return { launcher: { kind: s.kind, rank }, worldSize: flags.worldSize ?? size };
  }
  return { launcher: { kind: 'flag', rank: null }, worldSize: flags.worldSize ?? null };
}

/** The coordinator and job token from flags, else the environment (`ringswarm worker`, `status`, `inject`), or a UsageError naming what is missing. */
export function coordinatorAccess(flags: Pick<WorkerFlags, 'url' | 'token' | 'tokenFile'>, env: Env, readFile: (path: string) => string): { controlUrl: string; token: string } {
  const url = flags.url ?? env[COORDINATOR_ENV];
  if (!set(url)) throw new UsageError(`no coordinator: give --url ws://host:port or set ${COORDINATOR_ENV}`);
  const controlUrl = coordinatorUrl(url, flags.url !== undefined ? '--url' : COORDINATOR_ENV);
  let token = flags.token ?? env[TOKEN_ENV];
  if (!set(token)) {
    const file = flags.tokenFile ?? env[TOKEN_FILE_ENV];
    if (!set(file)) throw new UsageError(`no job token: give --token, --token-file, or set ${TOKEN_ENV} or ${TOKEN_FILE_ENV}`);
    try {
      token = readFile(file).trim();
    } catch (e) {
      throw new UsageError(`cannot read the token file ${file}: ${(e as Error).message}`);
    }
    if (token === '') throw new UsageError(`the token file ${file} is empty`);
  }
  return { controlUrl, token };
}

/** Everything `ringswarm worker` needs from its flags and environment, or a UsageError naming what is missing. */
export function workerIdentity(flags: WorkerFlags, env: Env, readFile: (path: string) => string): WorkerIdentity {
  const { controlUrl, token } = coordinatorAccess(flags, env, readFile);
  const { launcher, worldSize } = launcherRank(flags, env);
  const advertise = flags.advertise ?? env[ADVERTISE_ENV];
  return { controlUrl, token, launcher, worldSize, advertise: set(advertise) ? advertise.trim() : null };
}
