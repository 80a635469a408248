// How many workers a job may have: here, without imports, so the CLI's flag definitions (and
// `ringswarm --help`) need none of the modules that check a job.
export const MAX_WORKERS = 4096;
/** In one process, without a process per worker: 100,000 cards and more. */
export const MAX_SIM_WORKERS = 1 << 20;
