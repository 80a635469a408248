// The names the wire carries for what a job computes: element types, reduction operators,
// collectives and all-reduce algorithms. Here, in the wire contract, so that the control messages
// can validate them; src/collective re-exports them beside the code that implements each one.

export const DTYPES = ['f32', 'f64', 'i32'] as const;
export type DType = (typeof DTYPES)[number];

export const REDUCE_OPS = ['sum', 'prod', 'min', 'max', 'avg'] as const;
export type ReduceOp = (typeof REDUCE_OPS)[number];

export const COLLECTIVES = ['allreduce', 'reducescatter', 'allgather', 'broadcast'] as const;
export type CollectiveKind = (typeof COLLECTIVES)[number];

/** All-reduce algorithms: the bandwidth-optimal ring, the latency-friendly recursive doubling, and the frame-frugal binomial tree. */
export const ALLREDUCE_ALGOS = ['ring', 'rd', 'tree'] as const;
export type AllreduceAlgo = (typeof ALLREDUCE_ALGOS)[number];

/** Who gave a worker its rank: the coordinator (spawned), a launcher's environment, or `--rank`. */
export const LAUNCHER_KINDS = ['spawned', 'slurm', 'mpi', 'pmix', 'kubernetes', 'env', 'flag'] as const;
export type LauncherKind = (typeof LAUNCHER_KINDS)[number];
