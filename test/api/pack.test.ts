// The packed package installed into a temporary project: `import { run } from 'ringswarm'` works as a user gets it.
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync, symlinkSync, writeFileSync, mkdirSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterAll, expect, it } from 'vitest';

const root = resolve(import.meta.dirname, '../..');
const dirs: string[] = [];
afterAll(() => dirs.forEach((d) => rmSync(d, { recursive: true, force: true })));

it('npm pack installs into a project and runs a job', () => {
  const packDir = mkdtempSync(join(tmpdir(), 'rs-pack-'));
  const proj = mkdtempSync(join(tmpdir(), 'rs-proj-'));
  dirs.push(packDir, proj);
  execFileSync('npm', ['pack', '--ignore-scripts', '--pack-destination', packDir], { cwd: root, stdio: 'pipe' });
  const tgz = join(packDir, readdirSync(packDir).find((f) => f.endsWith('.tgz'))!);
  writeFileSync(join(proj, 'package.json'), JSON.stringify({ name: 'rs-user', version: '1.0.0', type: 'module' }));
  try {
    execFileSync('npm', ['install', '--offline', '--no-audit', '--no-fund', tgz], { cwd: proj, stdio: 'pipe', timeout: 45_000 });
  } catch {
    // No npm cache: unpack the tarball by hand and resolve its dependencies from this checkout's node_modules.
    const pkg = join(proj, 'node_modules', 'ringswarm');
    mkdirSync(pkg, { recursive: true });
    execFileSync('tar', ['xzf', tgz, '-C', pkg, '--strip-components=1']);
    // Each dependency of package.json (a scoped one by its scope's folder); theirs resolve from their real paths here.
    const deps = Object.keys((JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')) as { dependencies: Record<string, string> }).dependencies);
    for (const dep of new Set(deps.map((d) => d.split('/')[0]!))) {
      const to = join(proj, 'node_modules', dep);
      if (!existsSync(to)) symlinkSync(join(root, 'node_modules', dep), to);
    }
  }
  writeFileSync(
    join(proj, 'job.mjs'),
    [
      "import { run } from 'ringswarm';",
      // With metrics: prom-client, loaded only then, must come with the package.
      "let metrics = null;",
      "const report = await run({ workers: 2, cardsPerWorker: 1, size: '4KiB', steps: 2, port: 0, metricsPort: 0, html: 'out/report.html' }, { log: (l) => { if (l.startsWith('metrics: ')) metrics = l; } });",
      'console.log(JSON.stringify({ ok: report.ok, metrics: /^metrics: http:\\/\\/127\\.0\\.0\\.1:\\d+\\/metrics$/.test(metrics) }));',
    ].join('\n'),
  );
  const out = execFileSync('node', ['job.mjs'], { cwd: proj, encoding: 'utf8', timeout: 45_000 });
  expect(JSON.parse(out.trim().split('\n').pop()!)).toEqual({ ok: true, metrics: true });
  // --html: uPlot, read at run time, must come with the package too.
  expect(readFileSync(join(proj, 'out', 'report.html'), 'utf8')).toMatch(/uPlot/);
}, 60_000);
