// Charts as plain SVG built here, rather than a charting library from npm: no dependency to vendor, pin and
// audit; nothing but DOM calls, so it runs under the strict CSP (no inline style, no eval) unchanged; and it is
// a few hundred lines for the three shapes the views need (time lines, sparklines, bars). Colours and text
// sizes come from app.css classes, so the charts follow the page's contrast.

const NS = 'http://www.w3.org/2000/svg';

function s(tag, attrs, text) {
  const el = document.createElementNS(NS, tag);
  for (const [k, v] of Object.entries(attrs || {})) el.setAttribute(k, String(v));
  if (text !== undefined) el.appendChild(document.createTextNode(String(text)));
  return el;
}

function niceMax(v) {
  if (!(v > 0)) return 1;
  const p = Math.pow(10, Math.floor(Math.log10(v)));
  for (const m of [1, 2, 2.5, 5, 10]) if (m * p >= v) return m * p;
  return 10 * p;
}

function fmtTick(v) {
  if (Math.abs(v) >= 1e6) return (v / 1e6).toFixed(1) + 'M';
  if (Math.abs(v) >= 1e4) return (v / 1e3).toFixed(0) + 'k';
  if (Number.isInteger(v)) return String(v);
  return v.toPrecision(2);
}

function fmtDate(ms, spanMs) {
  const d = new Date(ms).toISOString();
  return spanMs > 3 * 86400e3 ? d.slice(5, 10) : d.slice(5, 10) + ' ' + d.slice(11, 16);
}

// A time-series line chart. series: [{name, points: [[ms, y], ...]}]; opts: {title, yLabel, width, height,
// yMax, xMin, xMax (ms: the window shown, else the data's)}. The title is the SVG's accessible name; a legend names each line.
export function lineChart(series, opts) {
  const W = opts.width || 640;
  const H = opts.height || 220;
  const m = {l: 56, r: 44, t: 12, b: 36}; // r: room for the last date label
  const svg = s('svg', {viewBox: `0 0 ${W} ${H}`, class: 'chart', role: 'img', 'aria-label': opts.title});
  svg.appendChild(s('title', {}, opts.title));
  const pts = series.flatMap((x) => x.points);
  if (pts.length === 0) {
    svg.appendChild(s('text', {x: W / 2, y: H / 2, class: 'axis-label', 'text-anchor': 'middle'}, 'No data in this window'));
    return wrap(svg, series);
  }
  let x0 = Number.isFinite(opts.xMin) ? opts.xMin : Math.min(...pts.map((p) => p[0]));
  let x1 = Number.isFinite(opts.xMax) ? opts.xMax : Math.max(...pts.map((p) => p[0]));
  if (x1 === x0) {
    x0 -= 3600e3;
    x1 += 3600e3;
  }
  const yMax = opts.yMax || niceMax(Math.max(...pts.map((p) => p[1])));
  const X = (v) => m.l + ((v - x0) / (x1 - x0)) * (W - m.l - m.r);
  const Y = (v) => H - m.b - (v / yMax) * (H - m.t - m.b);
  for (let i = 0; i <= 4; i++) {
    const v = (yMax * i) / 4;
    svg.appendChild(s('line', {x1: m.l, x2: W - m.r, y1: Y(v), y2: Y(v), class: 'grid'}));
    svg.appendChild(s('text', {x: m.l - 6, y: Y(v) + 4, class: 'tick', 'text-anchor': 'end'}, fmtTick(v)));
  }
  for (let i = 0; i <= 4; i++) {
    const v = x0 + ((x1 - x0) * i) / 4;
    svg.appendChild(s('text', {x: X(v), y: H - m.b + 16, class: 'tick', 'text-anchor': 'middle'}, fmtDate(v, x1 - x0)));
  }
  svg.appendChild(s('line', {x1: m.l, x2: m.l, y1: m.t, y2: H - m.b, class: 'axis'}));
  svg.appendChild(s('line', {x1: m.l, x2: W - m.r, y1: H - m.b, y2: H - m.b, class: 'axis'}));
  if (opts.yLabel) {
    svg.appendChild(s('text', {x: 12, y: H / 2, class: 'axis-label', transform: `rotate(-90 12 ${H / 2})`, 'text-anchor': 'middle'}, opts.yLabel));
  }
  svg.appendChild(s('text', {x: (W + m.l) / 2, y: H - 4, class: 'axis-label', 'text-anchor': 'middle'}, 'time (UTC)'));
  series.forEach((ser, i) => {
    const sorted = ser.points.slice().sort((a, b) => a[0] - b[0]);
    const d = sorted.map((p, j) => (j ? 'L' : 'M') + X(p[0]).toFixed(1) + ' ' + Y(p[1]).toFixed(1)).join(' ');
    svg.appendChild(s('path', {d, class: 'line s' + (i % 6)}));
    for (const p of sorted) {
      const c = s('circle', {cx: X(p[0]).toFixed(1), cy: Y(p[1]).toFixed(1), r: 2.5, class: 'dot s' + (i % 6)});
      c.appendChild(s('title', {}, ser.name + ': ' + fmtTick(p[1]) + ' at ' + new Date(p[0]).toISOString()));
      svg.appendChild(c);
    }
  });
  return wrap(svg, series);
}

function wrap(svg, series) {
  const fig = document.createElement('figure');
  fig.className = 'chart-box';
  fig.appendChild(svg);
  if (series.length > 0) {
    const legend = document.createElement('figcaption');
    legend.className = 'legend';
    series.forEach((ser, i) => {
      const item = document.createElement('span');
      const sw = document.createElement('span');
      sw.className = 'swatch s' + (i % 6);
      item.appendChild(sw);
      item.appendChild(document.createTextNode(ser.name));
      legend.appendChild(item);
    });
    fig.appendChild(legend);
  }
  return fig;
}

// A sparkline of counts (oldest first), 100x20, with a text alternative of its total and peak.
export function sparkline(values, label) {
  const W = 100;
  const H = 20;
  const max = Math.max(1, ...values);
  const svg = s('svg', {viewBox: `0 0 ${W} ${H}`, class: 'spark', role: 'img', width: W, height: H});
  const total = values.reduce((a, b) => a + b, 0);
  const alt = `${label}: ${total} over ${values.length} days, peak ${max === 1 && total === 0 ? 0 : max}`;
  svg.setAttribute('aria-label', alt);
  svg.appendChild(s('title', {}, alt));
  if (values.length === 0) return svg;
  const step = values.length > 1 ? W / (values.length - 1) : 0;
  const d = values.map((v, i) => (i ? 'L' : 'M') + (i * step).toFixed(1) + ' ' + (H - 1 - (v / max) * (H - 2)).toFixed(1)).join(' ');
  svg.appendChild(s('path', {d, class: 'line s0'}));
  return svg;
}

// Horizontal bars: items [{label, value}], for counts by state or reason.
export function bars(items, title) {
  const W = 480;
  const row = 22;
  const H = Math.max(row, items.length * row) + 4;
  const max = Math.max(1, ...items.map((i) => i.value));
  const svg = s('svg', {viewBox: `0 0 ${W} ${H}`, class: 'chart bars', role: 'img', 'aria-label': title});
  svg.appendChild(s('title', {}, title));
  items.forEach((it, i) => {
    const y = i * row + 2;
    const w = Math.max(1, (it.value / max) * (W - 230));
    svg.appendChild(s('text', {x: 140, y: y + 15, class: 'tick', 'text-anchor': 'end'}, it.label));
    svg.appendChild(s('rect', {x: 148, y: y + 3, width: w.toFixed(1), height: row - 8, class: 'bar s' + (i % 6)}));
    svg.appendChild(s('text', {x: 154 + w, y: y + 15, class: 'tick'}, fmtTick(it.value)));
  });
  return svg;
}
