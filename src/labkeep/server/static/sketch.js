// A still SVG drawing of a metric chart: the same traces and layout that plotly.js is given,
// drawn the moment a history arrives. On a first visit plotly.js (4.8 MB) keeps the main
// thread busy for about a second before it can draw anything; the sketch shows the data
// meanwhile and plotly.js replaces it with the interactive chart as soon as it is ready.
// It covers what metric charts use: line traces (gaps where y is null), one-point marker
// traces, linear or log y, linear or date x, gridlines, tick labels, the x axis title and a
// legend under the chart.

const SVG = "http://www.w3.org/2000/svg";
const SECOND = 1000;
const MINUTE = 60 * SECOND;
const HOUR = 60 * MINUTE;
const DAY = 24 * HOUR;
const DATE_STEPS = [
  SECOND, 2 * SECOND, 5 * SECOND, 10 * SECOND, 15 * SECOND, 30 * SECOND,
  MINUTE, 2 * MINUTE, 5 * MINUTE, 10 * MINUTE, 15 * MINUTE, 30 * MINUTE,
  HOUR, 2 * HOUR, 3 * HOUR, 6 * HOUR, 12 * HOUR,
  DAY, 2 * DAY, 7 * DAY, 14 * DAY, 30 * DAY, 91 * DAY, 365 * DAY,
];
const MONTHS = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"];

let clipIds = 0;

function node(tag, attrs = {}, text) {
  const el = document.createElementNS(SVG, tag);
  for (const [name, value] of Object.entries(attrs)) el.setAttribute(name, String(value));
  if (text !== undefined) el.textContent = text;
  return el;
}

function extent(values) {
  let lo = Infinity;
  let hi = -Infinity;
  for (const v of values) {
    if (v === null || !Number.isFinite(v)) continue;
    if (v < lo) lo = v;
    if (v > hi) hi = v;
  }
  return lo <= hi ? [lo, hi] : null;
}

/** How many ticks plotly.js aims for on an axis ``length`` pixels long. */
function tickCount(length, isY) {
  return Math.min(9, Math.max(4, length / (isY ? 40 : 80))) + 1;
}

/** The smallest round step (1, 2 or 5 times a power of ten) at least ``span / count``. */
function linearStep(span, count) {
  const raw = span / count;
  const power = 10 ** Math.floor(Math.log10(raw));
  return power * ([1, 2, 5, 10].find((m) => m * power >= raw * (1 - 1e-9)) || 10);
}

/** Multiples of ``step`` (shifted by ``origin``) in [lo, hi]; one a ten-thousandth of a step
 * past an end still counts (the tick 1M on a range 0..999,999). */
function stepsBetween(lo, hi, step, origin = 0) {
  const first = Math.ceil((lo - origin) / step - 1e-4);
  const last = Math.floor((hi - origin) / step + 1e-4);
  const ticks = [];
  for (let i = first; i <= last && ticks.length < 100; i += 1) ticks.push(i * step + origin);
  return ticks;
}

const minus = (text) => text.replace("-", "\u2212");

function fixed(v, step) {
  const decimals = Math.max(0, Math.ceil(-Math.log10(step) - 1e-9));
  return String(Number(v.toFixed(Math.min(decimals, 12))));
}

/** Labels for linear ticks ``step`` apart: on x, SI suffixes when the values reach 10,000
 * (0.2M, 40k); on y, exponents for tiny or huge values (2e-5), as the plotly.js charts do. */
function linearTicks(lo, hi, count, isY) {
  const step = linearStep(hi - lo, count);
  const ticks = stepsBetween(lo, hi, step);
  const largest = Math.max(...ticks.map(Math.abs), 0);
  const label = (v) => {
    if (v === 0) return "0";
    const a = Math.abs(v);
    if (isY && (largest >= 1e5 || largest < 1e-4)) {
      const digits = Math.max(0, Math.floor(Math.log10(a)) - Math.floor(Math.log10(step)));
      return v.toExponential(Math.min(digits, 6)).replace(/\.?0+e/, "e").replace("e+", "e");
    }
    if (!isY && largest >= 1e4) {
      const exponent = Math.min(12, 3 * Math.floor(Math.log10(largest) / 3));
      const size = 10 ** exponent;
      return `${fixed(v / size, step / size)}${{ 3: "k", 6: "M", 9: "B", 12: "T" }[exponent]}`;
    }
    return fixed(v, step);
  };
  return ticks.map((v) => [v, minus(label(v))]);
}

/** Log axis ticks in log10 units: powers of ten, with 2 and 5 between them on short ranges. */
function logTicks(lo, hi, count) {
  const powerLabel = (k) => (k >= -4 && k <= 4 ? String(Number((10 ** k).toPrecision(1))) : minus(`1e${k}`));
  const decades = hi - lo;
  const every = Math.max(1, Math.ceil(decades / count));
  const ticks = [];
  for (let k = Math.ceil(lo / every - 1e-9) * every; k <= hi + 1e-9; k += every) ticks.push([k, powerLabel(k)]);
  if (decades < 3) {
    for (let k = Math.floor(lo); k <= Math.ceil(hi); k += 1) {
      for (const m of [2, 5]) {
        const v = k + Math.log10(m);
        if (v >= lo && v <= hi) ticks.push([v, String(m)]);
      }
    }
  }
  if (ticks.length >= 2) return ticks;
  return linearTicks(10 ** lo, 10 ** hi, count, true)
    .filter(([v]) => v > 0)
    .map(([v, label]) => [Math.log10(v), label]);
}

function pad2(n) {
  return String(n).padStart(2, "0");
}

/** Date ticks (x in epoch milliseconds) at round local times; under a day apart, the date
 * goes on a second line under the first tick and under the first of each day. */
function dateTicks(lo, hi, count) {
  const wanted = (hi - lo) / count;
  const step = DATE_STEPS.find((s) => s >= wanted) || DATE_STEPS[DATE_STEPS.length - 1];
  const offset = -new Date(lo).getTimezoneOffset() * MINUTE; // round in local time
  const ticks = stepsBetween(lo + offset, hi + offset, step).map((v) => v - offset);
  let day = null;
  return ticks.map((t) => {
    const d = new Date(t);
    const date = `${MONTHS[d.getMonth()]} ${d.getDate()}, ${d.getFullYear()}`;
    if (step >= DAY) return [t, `${MONTHS[d.getMonth()]} ${d.getDate()}`];
    const time = step >= MINUTE
      ? `${pad2(d.getHours())}:${pad2(d.getMinutes())}`
      : `${pad2(d.getHours())}:${pad2(d.getMinutes())}:${pad2(d.getSeconds())}`;
    const second = date === day ? null : date;
    day = date;
    return [t, time, second];
  });
}

/** Plotly reads a few HTML entities in names (plotText writes them); the sketch sets text. */
function plainText(text) {
  return String(text).replace(/&lt;/g, "<").replace(/&gt;/g, ">").replace(/&amp;/g, "&");
}

/** The legend's entries laid out in rows no wider than ``width``, when the layout shows one. */
function legendRows(layout, traces, width) {
  const size = (layout.legend && layout.legend.font && layout.legend.font.size) || 10;
  const rows = [];
  if (!layout.showlegend) return { rows, size };
  let row = [];
  let x = 0;
  for (const t of traces) {
    if (t.showlegend === false || !t.name) continue;
    const name = plainText(t.name);
    const itemWidth = 46 + name.length * size * 0.6;
    if (row.length && x + itemWidth > width) {
      rows.push(row);
      row = [];
      x = 0;
    }
    row.push({ x, name, color: (t.line && t.line.color) || "#1f77b4" });
    x += itemWidth;
  }
  if (row.length) rows.push(row);
  return { rows, size };
}

function xNumber(x) {
  if (x === null || x === undefined) return null;
  return x instanceof Date ? x.getTime() : Number(x);
}

/** Draw ``traces`` with ``layout`` (plotly's shapes of them) as an SVG inside ``container``,
 * replacing an earlier sketch. */
export function drawSketch(container, traces, layout) {
  const logY = layout.yaxis.type === "log";
  const dateX = layout.xaxis.type === "date";
  const series = traces.map((t) => ({
    trace: t,
    xs: t.x.map(xNumber),
    ys: t.y.map((v) => (v === null || !Number.isFinite(v) || (logY && v <= 0) ? null : logY ? Math.log10(v) : v)),
  }));
  let xRange = layout.xaxis.range ? layout.xaxis.range.map(dateX ? (v) => new Date(v).getTime() : Number) : extent(series.flatMap((s) => s.xs));
  let yRange = layout.yaxis.range && !logY ? layout.yaxis.range.map(Number) : extent(series.flatMap((s) => s.ys));
  if (!xRange) xRange = [0, 1];
  if (!yRange) yRange = [0, 1];
  if (xRange[0] === xRange[1]) xRange = [xRange[0] - 1, xRange[1] + 1];
  if (yRange[0] === yRange[1]) yRange = [yRange[0] - 1, yRange[1] + 1];
  const yPad = (yRange[1] - yRange[0]) * 0.05;
  yRange = [yRange[0] - yPad, yRange[1] + yPad];
  if (logY) {
    // as plotly.js does, values a log axis cannot show pull the line far below the plot
    const below = yRange[0] - 10 * (yRange[1] - yRange[0]);
    for (const s of series) s.ys = s.trace.y.map((v, i) => (s.ys[i] === null && typeof v === "number" && v <= 0 ? below : s.ys[i]));
  }

  const width = Math.max(120, container.clientWidth || 600);
  const height = layout.height || 260;
  const margin = layout.margin || { l: 56, r: 14, t: 10, b: 38 };
  const fontSize = (layout.font && layout.font.size) || 11;
  // x first, with a guessed width: a second line of dates makes the plot area shorter
  const guess = Math.max(20, width - margin.l - margin.r);
  const twoLines = dateX && dateTicks(xRange[0], xRange[1], tickCount(guess, false)).some((t) => t[2]);
  const legend = legendRows(layout, traces, guess);
  const legendHeight = legend.rows.length ? legend.rows.length * 19 + 16 : 0;
  const plotHeight = height - margin.t - margin.b - (twoLines ? fontSize + 3 : 0) - legendHeight;
  const yTicks = logY ? logTicks(yRange[0], yRange[1], tickCount(plotHeight, true)) : linearTicks(yRange[0], yRange[1], tickCount(plotHeight, true), true);
  const longest = Math.max(0, ...yTicks.map(([, label]) => label.length));
  const left = Math.max(margin.l, Math.ceil(longest * fontSize * 0.62) + 12);
  const plotWidth = Math.max(20, width - left - margin.r);
  const xCount = tickCount(plotWidth, false);
  const xTicks = dateX ? dateTicks(xRange[0], xRange[1], xCount) : linearTicks(xRange[0], xRange[1], xCount, false);

  const px = (x) => left + ((x - xRange[0]) / (xRange[1] - xRange[0])) * plotWidth;
  const py = (y) => margin.t + (1 - (y - yRange[0]) / (yRange[1] - yRange[0])) * plotHeight;
  const font = (layout.font && layout.font.family) || "sans-serif";
  const color = (layout.font && layout.font.color) || "#444";
  const grid = layout.xaxis.gridcolor || "#eee";

  const svg = node("svg", {
    class: "chart-sketch", width, height, viewBox: `0 0 ${width} ${height}`,
    role: "img", "aria-label": "chart (loading the interactive version)",
    "font-family": font, "font-size": fontSize, fill: color,
  });
  svg.append(node("rect", { width, height, fill: layout.paper_bgcolor || "#fff" }));
  const clipId = `chart-sketch-clip-${(clipIds += 1)}`;
  const clip = node("clipPath", { id: clipId });
  clip.append(node("rect", { x: left, y: margin.t, width: plotWidth, height: plotHeight }));
  svg.append(clip);

  const bottom = margin.t + plotHeight;
  for (const [x, label, second] of xTicks) {
    const at = px(x).toFixed(1);
    svg.append(node("line", { x1: at, x2: at, y1: margin.t, y2: bottom, stroke: grid }));
    svg.append(node("text", { x: at, y: bottom + fontSize + 4, "text-anchor": "middle" }, label));
    if (second) svg.append(node("text", { x: at, y: bottom + 2 * fontSize + 7, "text-anchor": "middle" }, second));
  }
  for (const [y, label] of yTicks) {
    const at = py(y).toFixed(1);
    svg.append(node("line", { x1: left, x2: left + plotWidth, y1: at, y2: at, stroke: layout.yaxis.gridcolor || grid }));
    svg.append(node("text", { x: left - 6, y: Number(at) + fontSize * 0.35, "text-anchor": "end" }, label));
  }
  const axisLine = layout.xaxis.linecolor || "#ccc";
  svg.append(node("path", { class: "axes", d: `M${left},${margin.t}V${bottom}H${left + plotWidth}`, stroke: axisLine, fill: "none" }));
  const title = layout.xaxis.title && layout.xaxis.title.text;
  if (title) {
    const titleFont = layout.xaxis.title.font || {};
    svg.append(node("text", {
      x: left + plotWidth / 2, y: height - legendHeight - 4, "text-anchor": "middle",
      "font-size": titleFont.size || fontSize, fill: titleFont.color || color,
    }, title));
  }
  legend.rows.forEach((row, r) => {
    const y = height - legendHeight + 16 + r * 19;
    for (const item of row) {
      const x = left + 6 + item.x;
      svg.append(node("line", { x1: x, x2: x + 30, y1: y, y2: y, stroke: item.color, "stroke-width": 2 }));
      svg.append(node("text", { x: x + 36, y: y + legend.size * 0.35, "font-size": legend.size }, item.name));
    }
  });

  const lines = node("g", { "clip-path": `url(#${clipId})`, fill: "none" });
  for (const { trace, xs, ys } of series) {
    const line = trace.line || {};
    const stroke = line.color || "#1f77b4";
    if (trace.mode === "markers") {
      xs.forEach((x, i) => {
        if (x !== null && ys[i] !== null) lines.append(node("circle", { class: "trace", cx: px(x).toFixed(1), cy: py(ys[i]).toFixed(1), r: 3, fill: stroke }));
      });
      continue;
    }
    let d = "";
    let pen = "M";
    for (let i = 0; i < xs.length; i += 1) {
      if (xs[i] === null || ys[i] === null) {
        pen = "M";
        continue;
      }
      d += `${pen}${px(xs[i]).toFixed(1)},${py(ys[i]).toFixed(1)}`;
      pen = "L";
    }
    if (d) {
      lines.append(node("path", {
        class: "trace", d, stroke, "stroke-width": line.width || 2, opacity: trace.opacity ?? 1,
        "stroke-linejoin": "round", "stroke-linecap": "round",
      }));
    }
  }
  svg.append(lines);
  container.querySelector(":scope > svg.chart-sketch")?.remove();
  container.append(svg);
  return svg;
}

/** Remove the sketch from ``container`` (plotly.js is about to draw there). */
export function removeSketch(container) {
  container.querySelector(":scope > svg.chart-sketch")?.remove();
}
