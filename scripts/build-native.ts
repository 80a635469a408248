// `npm run build` step: compile src/native/kernels.c (the 3-way hardware CRC32C) into
// dist/native/kernels.node with the machine's C compiler and Node's own headers, then load it and
// check it against known CRCs. It is optional: without a compiler or the headers (or with
// RINGSWARM_NATIVE=0) it says why and the data path keeps @node-rs/crc32; the build never fails
// for it. Node headers: $npm_config_nodedir/include/node, else <node's prefix>/include/node.
import { existsSync, rmSync } from 'node:fs';
import path from 'node:path';
import { compileC, PROJECT_ROOT } from './c-ring-build.js';

const SOURCE = path.join(PROJECT_ROOT, 'src', 'native', 'kernels.c');
const OUT = path.join(PROJECT_ROOT, 'dist', 'native', 'kernels.node');

function nodeHeaders(): string | undefined {
  const dirs = [process.env.npm_config_nodedir, path.join(path.dirname(process.execPath), '..')].filter((d): d is string => !!d);
  return dirs.map((d) => path.join(d, 'include', 'node')).find((d) => existsSync(path.join(d, 'node_api.h')));
}

/** Known CRC32C values (RFC 3720's check value and a long run that takes the 3-way path). */
function selfCheck(file: string): string | undefined {
  const mod = { exports: {} as { crc32c(b: Uint8Array, init?: number): number; hardware: boolean } };
  try {
    process.dlopen(mod, file);
  } catch (err) {
    return `it does not load: ${(err as Error).message}`;
  }
  const { crc32c } = mod.exports;
  const long = new Uint8Array(100_003).map((_, i) => (i * 31 + 7) & 0xff);
  const split = crc32c(long.subarray(50_001), crc32c(long.subarray(0, 50_001)));
  if (crc32c(new TextEncoder().encode('123456789')) !== 0xe3069283) return 'wrong CRC32C of "123456789"';
  if (crc32c(new Uint8Array(32)) !== 0x8a9136aa) return 'wrong CRC32C of 32 zero bytes';
  if (split !== crc32c(long)) return 'a CRC continued from a prefix differs from the whole';
  return undefined;
}

/** Why the addon was not built, or undefined when it was built and passed its check. */
function build(): string | undefined {
  if (process.env.RINGSWARM_NATIVE === '0') return 'skipped (RINGSWARM_NATIVE=0)';
  const headers = nodeHeaders();
  if (!headers) return `no Node headers (node_api.h) under ${path.dirname(process.execPath)}/../include/node or $npm_config_nodedir`;
  const built = compileC(SOURCE, OUT, ['-O2', '-fvect-cost-model=dynamic', '-ffp-contract=off', '-shared', '-fPIC', '-Wall', `-I${headers}`, '-DNODE_GYP_MODULE_NAME=kernels']);
  if (!built.ok) return built.reason;
  return selfCheck(OUT);
}

const why = build();
if (why) {
  rmSync(OUT, { force: true }); // never leave an earlier build behind to be loaded
  console.log(`build-native: ${why}: frames use @node-rs/crc32`);
}

