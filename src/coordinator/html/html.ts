// A view as ONE self-contained HTML file: uPlot (its minified script and stylesheet, read from
// node_modules at run time), the page's own script and the view as JSON, all inline. No network.
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { dirname, resolve } from 'node:path';
import { ringswarmPage } from './client.js';
import type { View } from './view.js';

let assets: Promise<{ js: string; css: string }> | null = null;

/** uPlot's script and stylesheet, from the installed package (ringswarm's own dependency, wherever it is installed). */
export function uplotAssets(): Promise<{ js: string; css: string }> {
  const require = createRequire(import.meta.url);
  assets ??= Promise.all([readFile(require.resolve('uplot/dist/uPlot.iife.min.js'), 'utf8'), readFile(require.resolve('uplot/dist/uPlot.min.css'), 'utf8')]).then(([js, css]) => ({ js, css }));
  return assets;
}

/** JSON safe inside a <script> element: no `</script>`, no `<!--`, no line separators that end a JS string. */
export function scriptJson(value: unknown): string {
  return JSON.stringify(value).replace(/</g, '\\u003c').replace(/\u2028/g, '\\u2028').replace(/\u2029/g, '\\u2029');
}

/** Code safe inside a <script> element. */
const scriptCode = (js: string) => js.replace(/<\/(script)/gi, '<\\/$1');

const escapeHtml = (s: string) => s.replace(/[&<>"]/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;' })[c]!);

const CSS = `
body { font: 14px/1.4 system-ui, sans-serif; margin: 20px; color: #222; background: #fafafa; }
h1 { font-size: 20px; margin: 0 0 12px; display: flex; gap: 12px; align-items: center; }
h2 { font-size: 16px; margin: 24px 0 8px; }
section { background: #fff; border: 1px solid #ddd; border-radius: 6px; padding: 12px 16px; margin-bottom: 14px; }
.badge { font-size: 13px; padding: 2px 10px; border-radius: 10px; color: #fff; }
.badge.ok { background: #2a9d3a; } .badge.bad { background: #c62828; } .badge.running { background: #1565c0; }
#summary { display: grid; grid-template-columns: repeat(auto-fill, minmax(210px, 1fr)); gap: 6px 18px; }
.kv { display: flex; flex-direction: column; } .kv .k { color: #666; font-size: 12px; } .kv .v { font-weight: 600; word-break: break-all; }
table { border-collapse: collapse; font-size: 13px; width: 100%; }
th, td { border-bottom: 1px solid #e4e4e4; padding: 3px 8px; text-align: left; vertical-align: top; }
th { background: #f2f2f2; font-weight: 600; }
tr.healed td:last-child { color: #2a9d3a; font-weight: 600; } tr.open td:last-child, tr.missed td:last-child { color: #c62828; font-weight: 600; }
td.empty { color: #888; }
.legend-note { color: #666; font-size: 12px; }
.swatch { display: inline-block; width: 12px; height: 12px; vertical-align: middle; margin: 0 4px 0 10px; border: 1px solid #0002; }
#heat { display: block; max-width: 100%; image-rendering: pixelated; }
#heat-tip { min-height: 18px; font-family: ui-monospace, monospace; font-size: 12px; }
.goodput { height: 16px; background: #f1d5d5; border-radius: 4px; overflow: hidden; margin: 6px 0; max-width: 600px; }
#goodput-bar { height: 100%; background: #2a9d3a; }
.grid { display: flex; flex-wrap: wrap; gap: 3px; }
.cell { width: 26px; height: 22px; font-size: 10px; display: flex; align-items: center; justify-content: center; border-radius: 3px; color: #fff; }
.grid.small .cell { width: 12px; height: 12px; border-radius: 2px; }
.s-joining, .s-ringing { background: #64b5f6; } .s-training { background: #2e7d32; } .s-stalled { background: #f9a825; }
.s-silent { background: #ef6c00; } .s-frozen { background: #3949ab; } .s-recovering { background: #8e24aa; }
.s-done { background: #90a4ae; } .s-dead { background: #c62828; }
`;

const STATE_LEGEND = ['training', 'ringing', 'stalled', 'silent', 'frozen', 'recovering', 'done', 'dead'].map((s) => `<span class="swatch s-${s}"></span>${s}`).join('');

/** The page for `view`: the report as a file, or (view.live set) the dashboard a coordinator serves. */
export async function renderHtml(view: View): Promise<string> {
  const { js, css } = await uplotAssets();
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1"><link rel="icon" href="data:,">
<title>${escapeHtml(view.title)}</title>
<style>${css}</style><style>${CSS}</style>
</head><body>
<h1><span id="title"></span><span id="badge" class="badge"></span></h1>
<section><div id="summary"></div></section>
<section id="live" hidden><h2>Ranks, live</h2><div id="live-line"></div><div class="legend-note">${STATE_LEGEND}</div><div id="grid" class="grid"></div></section>
<section data-for="run"><h2>Step time and all-reduce time</h2>
<div class="legend-note"><span class="swatch" style="background:rgba(214,39,40,.3)"></span>fault: struck to training resumed (the line: detected)<span class="swatch" style="background:rgba(255,160,0,.35)"></span>injected straggler (the line: confirmed)<span class="swatch" style="border-style:dashed"></span>dashed: a new epoch</div>
<div id="steps-chart"></div></section>
<section data-for="run"><h2>Rank x step</h2>
<label>colour: <select id="heat-metric"><option value="stepMs">step time (compute + all-reduce)</option><option value="computeMs">compute time</option></select></label>
<canvas id="heat" width="800" height="300"></canvas><div id="heat-tip"></div></section>
<section data-for="run"><h2>Faults</h2><table id="faults"></table></section>
<section data-for="run"><h2>Stragglers</h2><table id="stragglers"></table><h2>Injected stragglers</h2><table id="injected-stragglers"></table></section>
<section data-for="run"><h2>Goodput</h2><div class="goodput"><div id="goodput-bar"></div></div><div id="goodput-text"></div><h2>Epochs</h2><table id="epochs"></table></section>
<section data-for="bench" hidden><h2>Bus bandwidth against size (dashed: the alpha-beta model)</h2><div id="bench-chart"></div></section>
<script type="application/json" id="view">${scriptJson(view)}</script>
<script>${scriptCode(js)}</script>
<script>(${scriptCode(ringswarmPage.toString())})();</script>
</body></html>
`;
}

/** Write the page to `file` (its folder created); returns the absolute path. */
export async function writeHtml(file: string, view: View): Promise<string> {
  const path = resolve(file);
  await mkdir(dirname(path), { recursive: true });
  await writeFile(path, await renderHtml(view));
  return path;
}
