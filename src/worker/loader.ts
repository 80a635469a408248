// The entry of a spawned worker, and of `ringswarm worker` (dist/src/cli/main.js requires this file
// for it): runs the bundled worker (dist/worker.cjs, from src/cli/worker-entry.ts) from V8's code cache.
// Compiling the 0.7 MB bundle was half of a worker's start (90 of 190 ms of CPU, profiled), and 256
// of them start at once on 2 cores; with the cache V8 skips the parse and compile. The cache
// (worker.cjs.v8cache, next to the bundle) is written by the first worker that finds none or finds
// it stale (V8 checks it against the source and its own version, and rejects a mismatch), atomically.
// Bundled by esbuild as CommonJS to dist/worker-loader.cjs.
import { readFileSync, renameSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { Script } from 'node:vm';

const bundle = join(__dirname, 'worker.cjs');
const cacheFile = `${bundle}.v8cache`;
// (The bundle's #! line is no JavaScript inside a function: blanked, keeping line numbers.)
const source = readFileSync(bundle, 'utf8').replace(/^#!.*/, '');
let cachedData: Buffer | undefined;
try {
  cachedData = readFileSync(cacheFile);
} catch {
  cachedData = undefined;
}
const script = new Script(`(function (exports, require, module, __filename, __dirname) {${source}\n})`, { filename: bundle, cachedData });
if (process.env.RINGSWARM_CODE_CACHE_ONLY === '1') {
  // At build time: the cache of the compile alone (the worker does not start).
  writeCache();
  process.exit(0);
}
const mod = { exports: {} };
(script.runInThisContext() as (...a: unknown[]) => void).call(mod.exports, mod.exports, createRequire(bundle), mod, bundle, dirname(bundle));

if (cachedData === undefined || script.cachedDataRejected) {
  // After the worker has started up, so the functions start-up runs are in the cache too.
  setTimeout(writeCache, 1000).unref();
}

function writeCache(): void {
  try {
    const tmp = `${cacheFile}.${process.pid}`;
    writeFileSync(tmp, script.createCachedData());
    renameSync(tmp, cacheFile);
  } catch {
    // A read-only install: every worker compiles, as without a cache.
  }
}
