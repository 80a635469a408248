// @ts-nocheck
// The page's own script: it runs in the browser, not in Node (html.ts inlines its source with
// Function.prototype.toString, beside uPlot). It renders the view embedded in the page
// (<script type="application/json" id="view">) and, on the live dashboard, every newer view the
// coordinator pushes over its WebSocket: render(view) may be called any number of times. No
// imports and no outer names: only what the page defines (uPlot) and the browser's own.
export function ringswarmPage() {
  const $ = (id) => document.getElementById(id);
  const el = (tag, attrs, ...kids) => {
    const e = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) {
      if (k === 'class') e.className = v;
      else if (k === 'text') e.textContent = v;
      else e.setAttribute(k, v);
    }
    for (const k of kids) e.append(k);
    return e;
  };
  const fmtMs = (x) => (x === null || x === undefined ? '–' : x >= 1000 ? Number((x / 1000).toPrecision(3)) + ' s' : Number(x.toPrecision(3)) + ' ms');
  const fmtBytes = (b) => {
    const u = ['B', 'KiB', 'MiB', 'GiB'];
    let i = 0;
    while (b >= 1024 && i < u.length - 1) (b /= 1024), i++;
    return (Number.isInteger(b) ? b : Number(b.toPrecision(3))) + ' ' + u[i];
  };
  const dash = (x) => (x === null || x === undefined || x === '' ? '–' : String(x));
  const charts = {};
  const width = () => Math.max(480, Math.min(1100, document.body.clientWidth - 40));

  const drawn = {};
  function table(id, headers, rows, empty) {
    const t = $(id);
    const key = JSON.stringify(rows);
    if (drawn[id] === key) return;
    drawn[id] = key;
    t.replaceChildren();
    if (!rows.length) {
      t.append(el('tbody', {}, el('tr', {}, el('td', { class: 'empty', text: empty }))));
      return;
    }
    t.append(el('thead', {}, el('tr', {}, ...headers.map((h) => el('th', { text: h })))));
    t.append(el('tbody', {}, ...rows.map((r) => el('tr', r.cls ? { class: r.cls } : {}, ...r.cells.map((c) => el('td', { text: dash(c) }))))));
  }

  function summary(v) {
    const s = v.summary;
    const running = v.kind === 'run' && v.live !== null && v.live.phase !== 'finished' && !disconnected;
    const items =
      v.kind === 'bench'
        ? [
            ['result', s.error ? 'FAILED: ' + s.error : s.wrong ? s.wrong + ' wrong elements' : 'ok, exact'],
            ['collective', s.collective],
            ['workers x cards', s.workers + ' x ' + s.cardsPerWorker],
            ['avg busbw', s.avgBusbwGBps + ' GB/s'],
            ['crossover (measured / model)', s.crossover ? dash(s.crossover.measuredBytes && fmtBytes(s.crossover.measuredBytes)) + ' / ' + dash(s.crossover.predictedBytes && fmtBytes(s.crossover.predictedBytes)) : '–'],
            ['startup', fmtMs(s.startupMs)],
          ]
        : [
            ['result', running ? 'running' : s.ok ? 'ok' : s.interrupted ? 'interrupted' : 'FAILED' + (s.error ? ': ' + s.error : '')],
            ['exactness', s.wrong === 0 ? 'exact: every element checked, 0 wrong' : s.wrong + ' wrong elements'],
            ['state digest', s.digest || '–'],
            ['workers x cards', s.workers + ' x ' + s.cardsPerWorker + ' = ' + s.cards + ' cards'],
            ['per card', fmtBytes(s.bytesPerCard) + ' ' + s.dtype + ' ' + s.op],
            ['algorithm', s.algo.join(', ') || '–'],
            ['steps', s.stepsCompleted + ' / ' + s.stepsRequested],
            ['wall time', fmtMs(s.wallMs) + (s.simulated ? ' (virtual)' : '')],
            ['step p50', fmtMs(s.stepMsP50)],
            ['all-reduce p50', fmtMs(s.allreduceMsP50)],
            ['busbw', s.busbwGBps + ' GB/s'],
            ['goodput', Math.round(s.goodput.ratio * 1000) / 10 + ' %'],
            ['faults / restarts', v.faults.length + ' / ' + s.restarts],
            ['seed', s.seed],
          ];
    const box = $('summary');
    box.replaceChildren(...items.map(([k, val]) => el('div', { class: 'kv' }, el('span', { class: 'k', text: k }), el('span', { class: 'v', text: String(val) }))));
    const badge = $('badge');
    const ok = v.kind === 'bench' ? !s.error && !s.wrong : s.ok;
    badge.textContent = running ? 'RUNNING' : ok ? 'OK' : v.kind === 'run' && s.interrupted ? 'INTERRUPTED' : 'FAILED';
    badge.className = 'badge ' + (ok ? 'ok' : badge.textContent === 'RUNNING' ? 'running' : 'bad');
    $('title').textContent = v.title;
  }

  // ------------------------------------------------------------------ step chart with bands
  function stepChart(v) {
    const box = $('steps-chart');
    const data = [v.steps.t, v.steps.stepMs, v.steps.allreduceMs];
    const bands = (u) => {
      const ctx = u.ctx;
      const { left, top, width: w, height: h } = u.bbox;
      ctx.save();
      ctx.beginPath();
      ctx.rect(left, top, w, h);
      ctx.clip();
      for (const e of v.epochs) {
        if (e.epoch === 0) continue;
        const x = u.valToPos(e.t, 'x', true);
        ctx.strokeStyle = 'rgba(90,90,90,0.6)';
        ctx.setLineDash([4, 4]);
        ctx.beginPath();
        ctx.moveTo(x, top);
        ctx.lineTo(x, top + h);
        ctx.stroke();
      }
      ctx.setLineDash([]);
      for (const b of v.windows) {
        const x0 = u.valToPos(b.from, 'x', true);
        const x1 = u.valToPos(b.to, 'x', true);
        ctx.fillStyle = b.kind === 'fault' ? 'rgba(214,39,40,0.18)' : 'rgba(255,160,0,0.22)';
        ctx.fillRect(x0, top, Math.max(3, x1 - x0), h);
        if (b.at !== null) {
          const xa = u.valToPos(b.at, 'x', true);
          ctx.strokeStyle = b.kind === 'fault' ? 'rgb(180,20,20)' : 'rgb(200,120,0)';
          ctx.lineWidth = 2;
          ctx.beginPath();
          ctx.moveTo(xa, top);
          ctx.lineTo(xa, top + h);
          ctx.stroke();
          ctx.lineWidth = 1;
        }
      }
      ctx.restore();
    };
    if (charts.steps && charts.steps.view === v.kind) {
      charts.steps.bands = bands;
      charts.steps.u.setData(data);
      return;
    }
    box.replaceChildren();
    const holder = { view: v.kind, bands };
    holder.u = new uPlot(
      {
        width: width(),
        height: 280,
        scales: { x: { time: false } },
        axes: [{ label: 'seconds since training started' }, { label: 'ms', size: 60 }],
        series: [
          { label: 'step', value: (u, x, si, i) => (i === null || i === undefined ? '–' : 'step ' + currentView.steps.step[i] + ' at ' + x + ' s') },
          { label: 'step time', stroke: '#1f77b4', width: 2, value: (u, x) => fmtMs(x) },
          { label: 'all-reduce', stroke: '#ff7f0e', width: 1.5, value: (u, x) => fmtMs(x) },
        ],
        hooks: { drawClear: [(u) => holder.bands(u)] },
      },
      data,
      box,
    );
    charts.steps = holder;
  }

  // ------------------------------------------------------------------ rank x step heat map
  const STOPS = [
    [68, 1, 84],
    [59, 82, 139],
    [33, 145, 140],
    [94, 201, 98],
    [253, 231, 37],
  ];
  const rgbOf = (f) => {
    f = Math.max(0, Math.min(1, f)) * (STOPS.length - 1);
    const i = Math.min(STOPS.length - 2, Math.floor(f));
    const a = STOPS[i];
    const b = STOPS[i + 1];
    const t = f - i;
    return a.map((x, k) => Math.round(x + (b[k] - x) * t));
  };
  const colour = (f) => 'rgb(' + rgbOf(f).join(',') + ')';
  const NO_REPORT = [232, 232, 232];
  const LUT = Array.from({ length: 256 }, (_, i) => rgbOf(i / 255));

  function heatMap(v) {
    const canvas = $('heat');
    const metric = $('heat-metric').value;
    const cells = v.heat[metric];
    const ranks = v.heat.ranks;
    const rg = v.heat.rankGroup;
    const sg = v.heat.stepGroup;
    const n = Math.floor(cells.length / Math.max(1, ranks));
    const L = 56;
    const B = 34;
    const T = 8;
    const R = 90;
    const plotW = width() - L - R;
    const cellH = Math.max(1, Math.min(16, Math.floor(384 / Math.max(1, ranks))));
    const plotH = cellH * ranks;
    canvas.width = L + plotW + R;
    canvas.height = T + plotH + B;
    const ctx = canvas.getContext('2d');
    ctx.fillStyle = '#fff';
    ctx.fillRect(0, 0, canvas.width, canvas.height);
    let lo = Infinity;
    let hi = -Infinity;
    for (const c of cells) if (c !== null && c > 0) (lo = Math.min(lo, c)), (hi = Math.max(hi, c));
    if (!Number.isFinite(lo)) (lo = 0.001), (hi = 1);
    if (hi <= lo) hi = lo * 1.01 + 0.001;
    // A log scale: a straggler's 3x and a fault's 100x both read.
    const frac = (c) => (Math.log(Math.max(c, lo)) - Math.log(lo)) / (Math.log(hi) - Math.log(lo));
    const cellW = n ? plotW / n : plotW;
    // One pixel a cell, then scaled up unsmoothed: a redraw costs one pass over the cells.
    if (n > 0 && ranks > 0) {
      const off = document.createElement('canvas');
      off.width = n;
      off.height = ranks;
      const octx = off.getContext('2d');
      const img = octx.createImageData(n, ranks);
      const px = img.data;
      for (let i = 0; i < n; i++) {
        for (let r = 0; r < ranks; r++) {
          const c = cells[i * ranks + r];
          const rgb = c === null ? NO_REPORT : LUT[Math.round(frac(c) * 255)];
          const o = (r * n + i) * 4;
          px[o] = rgb[0];
          px[o + 1] = rgb[1];
          px[o + 2] = rgb[2];
          px[o + 3] = 255;
        }
      }
      octx.putImageData(img, 0, 0);
      ctx.imageSmoothingEnabled = false;
      ctx.drawImage(off, L, T, plotW, plotH);
    }
    ctx.strokeStyle = '#444';
    ctx.strokeRect(L - 0.5, T - 0.5, plotW + 1, plotH + 1);
    ctx.fillStyle = '#222';
    ctx.font = '11px sans-serif';
    ctx.textAlign = 'right';
    ctx.textBaseline = 'middle';
    const rankTicks = Math.min(ranks, 8);
    for (let k = 0; k < rankTicks; k++) {
      const r = Math.round((k * (ranks - 1)) / Math.max(1, rankTicks - 1));
      ctx.fillText(String(r * rg), L - 6, T + r * cellH + cellH / 2);
    }
    ctx.save();
    ctx.translate(12, T + plotH / 2);
    ctx.rotate(-Math.PI / 2);
    ctx.textAlign = 'center';
    ctx.fillText(rg > 1 ? 'rank (groups of ' + rg + ')' : 'rank', 0, 0);
    ctx.restore();
    ctx.textAlign = 'center';
    ctx.textBaseline = 'top';
    const stepTicks = Math.min(n, 10);
    for (let k = 0; k < stepTicks; k++) {
      const i = Math.round((k * (n - 1)) / Math.max(1, stepTicks - 1));
      ctx.fillText(String(v.steps.step[i * sg]), L + (i + 0.5) * cellW, T + plotH + 4);
    }
    ctx.fillText(sg > 1 ? 'step (groups of ' + sg + ', each cell the slowest)' : 'step', L + plotW / 2, T + plotH + 18);
    // The colour legend: low at the bottom, high at the top.
    const lx = L + plotW + 16;
    const lh = Math.max(60, Math.min(plotH, 200));
    for (let y = 0; y < lh; y++) {
      ctx.fillStyle = colour(1 - y / (lh - 1));
      ctx.fillRect(lx, T + y, 14, 1);
    }
    ctx.strokeRect(lx - 0.5, T - 0.5, 15, lh + 1);
    ctx.fillStyle = '#222';
    ctx.textAlign = 'left';
    ctx.textBaseline = 'middle';
    ctx.fillText(fmtMs(hi), lx + 18, T + 4);
    ctx.fillText(fmtMs(Math.round(Math.sqrt(lo * hi) * 100) / 100), lx + 18, T + lh / 2);
    ctx.fillText(fmtMs(lo), lx + 18, T + lh - 4);
    canvas.onmousemove = (e) => {
      const rect = canvas.getBoundingClientRect();
      const x = ((e.clientX - rect.left) * canvas.width) / rect.width - L;
      const y = ((e.clientY - rect.top) * canvas.height) / rect.height - T;
      const tip = $('heat-tip');
      const i = Math.floor(x / cellW);
      const r = Math.floor(y / cellH);
      if (x < 0 || y < 0 || i >= n || r >= ranks) return void (tip.textContent = '');
      const h = currentView.heat;
      const c = h.stepMs[i * ranks + r];
      const cp = h.computeMs[i * ranks + r];
      const st = currentView.steps.step;
      const rk = rg > 1 ? 'ranks ' + r * rg + '-' + (Math.min(currentView.summary.workers, (r + 1) * rg) - 1) : 'rank ' + r;
      const sp = sg > 1 ? 'steps ' + st[i * sg] + '-' + st[Math.min(st.length, (i + 1) * sg) - 1] : 'step ' + st[i];
      tip.textContent = rk + ', ' + sp + ': ' + (c === null ? 'no report' : fmtMs(c) + ' (compute ' + fmtMs(cp) + ')');
    };
  }

  // ------------------------------------------------------------------ bench chart
  function benchChart(v) {
    const box = $('bench-chart');
    box.replaceChildren();
    if (charts.bench) charts.bench.destroy();
    const xs = [...new Set(v.series.flatMap((s) => s.bytes))].sort((a, b) => a - b);
    const palette = ['#1f77b4', '#d62728', '#2ca02c', '#9467bd'];
    const data = [xs];
    const series = [{ label: 'size per card', value: (u, x) => (x === null || x === undefined ? '–' : fmtBytes(x)) }];
    v.series.forEach((s, k) => {
      const at = new Map(s.bytes.map((b, i) => [b, i]));
      data.push(xs.map((b) => (at.has(b) ? s.busbwGBps[at.get(b)] : null)));
      series.push({ label: s.algo + ' measured', stroke: palette[k % 4], width: 2, spanGaps: true, points: { show: true } });
      if (s.modelBusbwGBps.some((x) => x !== null)) {
        data.push(xs.map((b) => (at.has(b) ? s.modelBusbwGBps[at.get(b)] : null)));
        series.push({ label: s.algo + ' model', stroke: palette[k % 4], dash: [6, 4], width: 1.5, spanGaps: true });
      }
    });
    charts.bench = new uPlot(
      {
        width: width(),
        height: 320,
        scales: { x: { time: false, distr: 3, log: 2 } },
        axes: [{ label: 'bytes per card', values: (u, ticks) => ticks.map((t) => fmtBytes(t)) }, { label: 'busbw GB/s', size: 60 }],
        series,
      },
      data,
      box,
    );
  }

  // ------------------------------------------------------------------ live grid
  function grid(v) {
    const live = v.live;
    const box = $('grid');
    $('live').hidden = !live;
    if (!live) return;
    $('live-line').textContent =
      'phase ' + live.phase + ', epoch ' + live.epoch + ', step ' + live.step + ' / ' + v.summary.stepsRequested + ' at ' + live.t + ' s' + (live.stuckAt ? ', stuck at ' + live.stuckAt : '') + (disconnected ? ' (the run has ended: disconnected)' : '');
    const n = live.rankState.length;
    while (box.children.length > n) box.lastChild.remove();
    while (box.children.length < n) box.append(el('div', { class: 'cell' }));
    const small = n > 64;
    box.className = small ? 'grid small' : 'grid';
    for (let r = 0; r < n; r++) {
      const c = box.children[r];
      const st = live.states[live.rankState[r]] || 'joining';
      const cls = 'cell s-' + st;
      if (c.className !== cls) c.className = cls;
      c.dataset.rank = String(r);
      c.dataset.state = st;
      c.title = 'rank ' + r + ' (home ' + live.home[r] + ', pid ' + live.pid[r] + '): ' + st;
      const label = small ? '' : String(r);
      if (c.textContent !== label) c.textContent = label;
    }
  }

  function faults(v) {
    table(
      'faults',
      ['id', 'kind', 'where', 'step / phase', 'injected', 'struck', 'detected by', 'detection', 'located', 'action', 'restored from', 'recovery', 'lost steps', 'healed'],
      v.faults.map((f) => ({
        cls: f.healed ? 'healed' : f.struck ? 'open' : 'missed',
        cells: [
          f.id,
          f.kind,
          f.where,
          (f.step === null ? '–' : 'step ' + f.step) + (f.phase ? ' / ' + f.phase : ''),
          f.injected ? (f.live ? 'live' : 'yes') : 'from outside',
          f.struck ? 'yes' : 'no' + (f.note ? ': ' + f.note : ''),
          f.detectedBy,
          fmtMs(f.detectedAfterMs),
          f.located,
          f.action,
          f.restoredFrom,
          fmtMs(f.recoveredAfterMs),
          f.lostSteps,
          f.healed ? 'yes' : 'no',
        ],
      })),
      'no fault',
    );
    table(
      'stragglers',
      ['kind', 'where', 'first seen', 'confirmed', 'score', 'slowdown', 'action', 'injected', 'step before', 'step after'],
      v.stragglers.map((s) => ({ cells: [s.kind, s.where, 'step ' + s.firstSeenStep, 'step ' + s.detectedAtStep, s.score, s.slowdown === null ? '–' : s.slowdown + 'x', s.action, s.injected ? 'yes' : 'no', fmtMs(s.stepMsBefore), fmtMs(s.stepMsAfter)] })),
      'no straggler detected',
    );
    table(
      'injected-stragglers',
      ['kind', 'where', 'from step', 'struck', 'detected at'],
      v.injectedStragglers.map((s) => ({ cls: s.detectedAtStep === null ? 'missed' : 'healed', cells: [s.kind, s.where, s.atStep, s.struck ? 'yes' : 'no' + (s.note ? ': ' + s.note : ''), s.detectedAtStep === null ? 'not detected' : 'step ' + s.detectedAtStep] })),
      'none injected',
    );
    table(
      'epochs',
      ['epoch', 'at', 'from step', 'workers', 'algorithm', 'why'],
      v.epochs.map((e) => ({ cells: [e.epoch, e.t + ' s', e.fromStep, e.workers, e.algo, e.reason] })),
      'no epoch',
    );
  }

  function goodput(v) {
    const g = v.summary.goodput;
    const bar = $('goodput-bar');
    bar.style.width = Math.round(g.ratio * 1000) / 10 + '%';
    $('goodput-text').textContent =
      Math.round(g.ratio * 1000) / 10 + ' % of ' + fmtMs(g.wallMs) + ' of training went into counted steps (' + fmtMs(g.productiveMs) + '); ' + g.lostSteps + ' steps lost, ' + g.recomputedSteps + ' recomputed';
  }

  let currentView = null;
  let disconnected = false;
  function render(v) {
    currentView = v;
    document.body.dataset.kind = v.kind;
    summary(v);
    for (const s of document.querySelectorAll('[data-for]')) s.hidden = s.dataset.for !== v.kind;
    if (v.kind === 'bench') return benchChart(v);
    grid(v);
    stepChart(v);
    heatMap(v);
    faults(v);
    goodput(v);
  }

  /** A live update: the step series anew, the heat map from column `heat.from` on, the rest whole. */
  function apply(v, m) {
    const h = m.heat;
    const keep = h.ranks === v.heat.ranks && h.rankGroup === v.heat.rankGroup && h.stepGroup === v.heat.stepGroup ? h.from * h.ranks : 0;
    v.heat = { ...h, from: 0, stepMs: v.heat.stepMs.slice(0, keep).concat(h.stepMs), computeMs: v.heat.computeMs.slice(0, keep).concat(h.computeMs) };
    for (const k of ['summary', 'steps', 'windows', 'faults', 'stragglers', 'injectedStragglers', 'epochs', 'live']) v[k] = m[k];
    return v;
  }

  window.ringswarm = { render, apply, get view() { return currentView; } };
  $('heat-metric').onchange = () => currentView && heatMap(currentView);
  let view = JSON.parse($('view').textContent);
  render(view);
  if (view.live && /^https?:$/.test(location.protocol)) {
    const ws = new WebSocket((location.protocol === 'https:' ? 'wss://' : 'ws://') + location.host + '/ws');
    ws.onmessage = (e) => {
      const m = JSON.parse(e.data);
      if (m.type === 'view') view = m.view;
      else if (m.type === 'update') view = apply(view, m);
      render(view);
    };
    ws.onclose = () => {
      disconnected = true;
      render(view);
    };
  }
}
