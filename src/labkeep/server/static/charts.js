// Metric charts on plotly.js (served by labkeep from the installed plotly package, no CDN).
// Histories arrive downsampled by the server (first/min/max/last per bucket), so a chart of a
// million points draws a few thousand; zooming in fetches the visible range at full detail.
import { api, h } from "./api.js";
import { drawSketch, removeSketch } from "./sketch.js";

let plotly = null;

/** plotly.js, loaded once on first use (the runs table never pays for it). */
export function loadPlotly() {
  if (window.Plotly) return Promise.resolve(window.Plotly);
  if (!plotly) {
    plotly = new Promise((resolve, reject) => {
      const script = document.createElement("script");
      script.src = "/vendor/plotly.min.js";
      script.onload = () => resolve(window.Plotly);
      script.onerror = () => reject(new Error("plotly.js did not load"));
      document.head.append(script);
    });
  }
  return plotly;
}

export const POINTS = 1500;

/** One metric's history from the server; non-finite values (sent as strings) become gaps. */
export async function fetchHistory(ref, key, { x = "step", since = 0, xMin, xMax, points = POINTS } = {}) {
  const q = new URLSearchParams({ points: String(points), x: x === "step" ? "step" : "time" });
  if (since) q.set("since", String(since));
  if (xMin !== undefined) q.set("x_min", String(xMin));
  if (xMax !== undefined) q.set("x_max", String(xMax));
  const data = await api(`/runs/${encodeURIComponent(ref)}/metrics/${encodeURIComponent(key)}/history?${q}`);
  data.values = data.values.map((v) => (typeof v === "number" ? v : null));
  data.times = data.times.map((v) => (typeof v === "number" ? v : null));
  return data;
}

/** Exponential moving average with TensorBoard's debiasing; gaps stay gaps. */
export function smooth(values, weight) {
  if (!weight) return values;
  let last = 0;
  let count = 0;
  return values.map((v) => {
    if (v === null || !Number.isFinite(v)) return null;
    last = last * weight + (1 - weight) * v;
    count += 1;
    return last / (1 - weight ** count);
  });
}

export const X_LABELS = { step: "step", rel: "time (s)", wall: "wall time" };

/** Shared chart options, with listeners that redraw every chart when one changes. */
export class ChartOptions {
  constructor(storageKey = "labkeep.chart") {
    this.storageKey = storageKey;
    const saved = JSON.parse(localStorage.getItem(storageKey) || "{}");
    this.x = ["step", "rel", "wall"].includes(saved.x) ? saved.x : "step";
    this.log = Boolean(saved.log);
    this.smooth = Number(saved.smooth) || 0;
    this.listeners = new Set();
  }

  set(changes) {
    Object.assign(this, changes);
    localStorage.setItem(this.storageKey, JSON.stringify({ x: this.x, log: this.log, smooth: this.smooth }));
    for (const listener of this.listeners) listener(changes);
  }

  /** The controls bar: x axis, log scale, smoothing. */
  controls() {
    const xSelect = h(
      "select",
      { class: "input", id: "x-axis", onchange: (e) => this.set({ x: e.target.value }) },
      ...Object.entries(X_LABELS).map(([value, label]) =>
        h("option", { value, text: label, selected: value === this.x })),
    );
    const log = h("input", { type: "checkbox", id: "log-scale", checked: this.log, onchange: (e) => this.set({ log: e.target.checked }) });
    const shown = h("span", { class: "mono", text: this.smooth.toFixed(2) });
    const slider = h("input", {
      type: "range", min: "0", max: "0.99", step: "0.01", value: String(this.smooth), id: "smoothing",
      oninput: (e) => { shown.textContent = Number(e.target.value).toFixed(2); },
      onchange: (e) => this.set({ smooth: Number(e.target.value) }),
    });
    return h(
      "div",
      { class: "chart-controls" },
      h("label", {}, "x axis", xSelect),
      h("label", {}, log, "log scale"),
      h("label", {}, "smoothing", slider, shown),
    );
  }
}

/**
 * A chart of one metric key for one or more runs (one trace per run).
 * series: [{ref, label, color, start}] where start is the run's start time (for relative time).
 */
export class MetricChart {
  constructor(el, key, series, options, { legend = false } = {}) {
    this.el = el;
    this.key = key;
    this.options = options;
    this.legend = legend;
    this.series = series.map((s) => ({ ...s, steps: [], values: [], times: [], total: 0, downsampled: false }));
    this.zoomed = null;
    this.loaded = false;
    this.busy = null;
    this.upgrade = null; // the interactive drawing, pending while plotly.js loads
  }

  axis() {
    return this.options.x;
  }

  async load() {
    this.busy = this._load();
    try {
      await this.busy;
    } finally {
      this.busy = null;
    }
  }

  async _load() {
    const x = this.axis();
    const range = this.zoomed;
    await Promise.all(
      this.series.map(async (s) => {
        const window = range ? this._serverRange(s, range) : {};
        const data = await fetchHistory(s.ref, this.key, { x, ...window });
        Object.assign(s, { steps: data.steps, values: data.values, times: data.times, total: data.total, downsampled: data.downsampled });
      }),
    );
    this.loaded = true;
    await this.draw();
  }

  /** Append points logged since the last look (live runs); refetch when the series grew large. */
  async update(ref, total) {
    const s = this.series.find((item) => String(item.ref) === String(ref));
    if (!s || total <= s.total || this.busy) return;
    if (s.downsampled || this.zoomed || s.steps.length + (total - s.total) > POINTS * 2) {
      await this.load();
      return;
    }
    const data = await fetchHistory(s.ref, this.key, { x: this.axis(), since: s.total, points: POINTS * 2 });
    if (data.downsampled) {
      await this.load();
      return;
    }
    // New arrays, not pushes: Plotly.react redraws only data whose arrays changed identity.
    s.steps = s.steps.concat(data.steps);
    s.values = s.values.concat(data.values);
    s.times = s.times.concat(data.times);
    s.total = data.total;
    if (this.axis() === "step" && data.steps.length && s.steps.length > data.steps.length
        && s.steps[s.steps.length - data.steps.length - 1] > data.steps[0]) {
      await this.load(); // steps went backwards: let the server order them
      return;
    }
    await this.draw();
  }

  _serverRange(s, [lo, hi]) {
    const x = this.axis();
    if (x === "step") return { xMin: Math.floor(lo), xMax: Math.ceil(hi) };
    if (x === "rel") return { xMin: lo + s.start, xMax: hi + s.start };
    return { xMin: Date.parse(lo) / 1000, xMax: Date.parse(hi) / 1000 };
  }

  _xs(s) {
    const x = this.axis();
    if (x === "step") return s.steps;
    if (x === "rel") return s.times.map((t) => (t === null ? null : t - s.start));
    return s.times.map((t) => (t === null ? null : new Date(t * 1000)));
  }

  traces() {
    const traces = [];
    const weight = this.options.smooth;
    for (const s of this.series) {
      const xs = this._xs(s);
      const label = plotText(s.label);
      const base = { type: "scatter", mode: "lines", x: xs, name: label, legendgroup: label, hovertemplate: `%{y:.5g}<extra>${label.replace(/%/g, "%%")}</extra>` };
      // One point, or points all at one x: a line alone would not show them.
      if (xs.length === 1) base.mode = "markers";
      else if (new Set(xs.map(Number)).size === 1) base.mode = "lines+markers";
      if (weight > 0) {
        traces.push({ ...base, y: s.values, line: { color: s.color, width: 1 }, opacity: 0.25, showlegend: false, hoverinfo: "skip", hovertemplate: undefined });
        traces.push({ ...base, y: smooth(s.values, weight), line: { color: s.color, width: 1.8 } });
      } else {
        traces.push({ ...base, y: s.values, line: { color: s.color, width: 1.6 } });
      }
    }
    return traces;
  }

  /** Axis ranges where every point shares one x (or one y), which plotly would centre
   * on -1..1 around the value: from zero (or the start of a wall-clock minute) instead. */
  _ranges() {
    const xs = [];
    const ys = [];
    for (const s of this.series) {
      for (const x of this._xs(s)) if (x !== null) xs.push(x instanceof Date ? x.getTime() : x);
      for (const y of s.values) if (y !== null && Number.isFinite(y)) ys.push(y);
    }
    const ranges = {};
    if (xs.length && new Set(xs).size === 1 && !this.zoomed) {
      const x0 = xs[0];
      if (this.axis() === "wall") ranges.x = [new Date(x0 - 30_000), new Date(x0 + 30_000)];
      else ranges.x = x0 > 0 ? [0, x0 * 2] : x0 < 0 ? [x0 * 2, 0] : [0, 1];
    }
    if (ys.length && new Set(ys).size === 1 && !this.options.log) {
      const y0 = ys[0];
      ranges.y = y0 > 0 ? [0, y0 * 1.2] : y0 < 0 ? [y0 * 1.2, 0] : [-1, 1];
    }
    return ranges;
  }

  layout() {
    const x = this.axis();
    const ranges = this._ranges();
    return {
      height: 260,
      margin: { l: 56, r: 14, t: 10, b: 38 },
      font: { family: "system-ui, -apple-system, Segoe UI, Roboto, sans-serif", size: 11, color: "#3b4352" },
      paper_bgcolor: "#fff",
      plot_bgcolor: "#fff",
      showlegend: this.legend,
      legend: { orientation: "h", y: -0.22, font: { size: 10 } },
      hovermode: "x unified",
      hoverlabel: { font: { size: 11 } },
      xaxis: {
        type: x === "wall" ? "date" : "linear",
        title: { text: X_LABELS[x], standoff: 6, font: { size: 10, color: "#98a2b3" } },
        gridcolor: "#eef0f3", zeroline: false, linecolor: "#cfd4dc", automargin: true,
        range: this.zoomed || ranges.x, autorange: !(this.zoomed || ranges.x),
      },
      yaxis: {
        type: this.options.log ? "log" : "linear",
        ...(ranges.y ? { range: ranges.y, autorange: false } : {}),
        gridcolor: "#eef0f3", zeroline: false, linecolor: "#cfd4dc", automargin: true, exponentformat: "e",
      },
      uirevision: `${this.key}:${x}:${this.options.log}`,
    };
  }

  /** Draw the chart with plotly.js; until plotly.js is ready, draw a still sketch of it at
   * once and the interactive chart when plotly.js is (the returned promise waits for it). */
  async draw() {
    if (!window.Plotly) {
      drawSketch(this.el, this.traces(), this.layout());
      this._drawn();
      if (!this.upgrade) {
        this.upgrade = loadPlotly().then(() => {
          this.upgrade = null;
          return this.draw();
        });
      }
      return this.upgrade;
    }
    const first = !this.el.dataset.rendered;
    removeSketch(this.el);
    await window.Plotly.react(this.el, this.traces(), this.layout(), {
      displaylogo: false, responsive: true, modeBarButtonsToRemove: ["select2d", "lasso2d", "autoScale2d"],
    });
    if (first) {
      this.el.on("plotly_relayout", (event) => this._relayout(event));
    }
    this.el.dataset.rendered = "true"; // the interactive chart
    if (!window.labkeepChartInteractiveAt) window.labkeepChartInteractiveAt = performance.now();
    this._drawn();
    if (this.onDraw) this.onDraw(this);
  }

  /** Marks on the element (tests and benchmarks read them) once either drawing is shown. */
  _drawn() {
    const points = this.series.reduce((n, s) => n + s.steps.length, 0);
    const total = this.series.reduce((n, s) => n + s.total, 0);
    this.el.dataset.drawn = "true";
    if (!window.labkeepChartAt) window.labkeepChartAt = performance.now(); // first chart drawn
    this.el.dataset.points = String(points);
    this.el.dataset.total = String(total);
    const lastSteps = this.series.map((s) => (s.steps.length ? s.steps[s.steps.length - 1] : ""));
    this.el.dataset.lastStep = String(lastSteps.join(","));
  }

  _relayout(event) {
    if (event["xaxis.autorange"]) {
      if (this.zoomed) {
        this.zoomed = null;
        this.load();
      }
      return;
    }
    const lo = event["xaxis.range[0]"];
    const hi = event["xaxis.range[1]"];
    if (lo === undefined || hi === undefined) return;
    const wasDownsampled = this.series.some((s) => s.downsampled);
    this.zoomed = [lo, hi];
    if (wasDownsampled) this.load(); // fetch the visible range at full detail
  }
}

/** Plotly reads a few HTML tags in labels; entities make a run's name show literally. */
export function plotText(text) {
  return String(text).replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;");
}

/** A titled card holding one chart; charts load when they scroll into view. */
export function chartCard(key, subtitle = "") {
  const plot = h("div", { class: "chart", dataset: { key } });
  const sub = h("span", { class: "muted", text: subtitle });
  const card = h("div", { class: "chart-card" }, h("div", { class: "chart-title" }, h("span", { text: key }), sub), plot);
  return { card, plot, sub };
}

const MARGIN = 300;

function nearViewport(el) {
  const box = el.getBoundingClientRect();
  if (!box.width && !box.height) return false; // not laid out (a hidden panel)
  return box.bottom > -MARGIN && box.top < window.innerHeight + MARGIN
    && box.right > -MARGIN && box.left < window.innerWidth + MARGIN;
}

const observed = new WeakMap();
const observer = "IntersectionObserver" in window
  ? new IntersectionObserver((entries) => {
    for (const entry of entries) {
      if (!entry.isIntersecting) continue;
      observer.unobserve(entry.target);
      const start = observed.get(entry.target);
      observed.delete(entry.target);
      if (start) start();
    }
  }, { rootMargin: `${MARGIN}px` })
  : null;

/** Call ``start`` once ``el`` is (nearly) visible: at once when it already is, since the
 * observer reports only at the next frame, which a long script (plotly.js) can hold up. */
export function whenVisible(el, start) {
  if (!observer || nearViewport(el)) {
    start();
    return;
  }
  observed.set(el, start);
  observer.observe(el);
}
