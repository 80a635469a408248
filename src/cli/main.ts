#!/usr/bin/env node
// ringswarm: emulate a large training cluster with real processes on one machine.
//
// The entry, and only a dispatcher: ES module imports are hoisted, so whatever this file imported
// would load before its first line ran, for every command. `ringswarm worker` (what srun, mpirun or
// a Kubernetes Job starts, by the hundred on a full machine) runs the bundled worker from V8's code
// cache (dist/worker-loader.cjs, src/worker/loader.ts; src/cli/worker-entry.ts parses its flags),
// without the rest of the CLI; every other command loads the CLI (cli.ts).
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';

const loader = fileURLToPath(new URL('../../worker-loader.cjs', import.meta.url));
const bundle = fileURLToPath(new URL('../../worker.cjs', import.meta.url));
if (process.argv[2] === 'worker' && existsSync(loader) && existsSync(bundle)) createRequire(import.meta.url)(loader);
else await import('./cli.js');
