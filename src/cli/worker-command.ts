// `ringswarm worker`: its flags and help (worker-start.ts runs it). Light, and shared: cli.ts lists
// it in `ringswarm --help`, and worker-entry.ts parses it inside the worker bundle, so that a worker
// a launcher starts loads nothing of the rest of the CLI.
import type { Command } from 'commander';
import { ADVERTISE_ENV, COORDINATOR_ENV, RANK_SOURCES, TOKEN_ENV, TOKEN_FILE_ENV } from '../api/launcher.js';
import { host, intIn } from '../api/flags.js';
import { MAX_WORKERS } from '../api/limits.js';

export function workerCommand(program: Command): Command {
  return program
    .command('worker')
    .description('join a running job as a worker (one a launcher such as srun, mpirun or a Kubernetes Job starts; see deploy/)')
    .option('--url <ws-url>', `the coordinator: ws://host:port or host:port (default: $${COORDINATOR_ENV})`)
    .option('--token <token>', `the job token it printed (default: $${TOKEN_ENV})`)
    .option('--token-file <path>', `read the token from this file (default: $${TOKEN_FILE_ENV}), e.g. a mounted Kubernetes Secret`)
    .option('--rank <r>', `this worker's rank (default: from the launcher: ${RANK_SOURCES.map((x) => x.rank).join(', ')}; else by arrival)`, intIn(0, MAX_WORKERS * 2))
    .option('--world-size <n>', "the job's world size, --workers + --spares, checked by the coordinator (default: from the launcher)", intIn(1, MAX_WORKERS * 2))
    .option('--id <name>', 'worker id (default: from the rank, host and pid)')
    .option('--host <addr>', "address this worker's data server binds (0.0.0.0: every interface; default: 127.0.0.1, or 0.0.0.0 when it advertises another address)", host)
    .option('--advertise <addr>', `the address peers reach this worker at (default: $${ADVERTISE_ENV}, else --host; for 0.0.0.0 this host's first external IPv4)`, host)
    .option('--connect-timeout-ms <ms>', 'keep trying this long to reach a coordinator that is not up yet', intIn(0, 3_600_000), 30_000);
}
