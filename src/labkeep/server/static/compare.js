// Runs side by side: overlaid metric charts, params with differences highlighted, parallel
// coordinates of params and a metric, and a scatter of any param against any metric.
import {
  api, clear, fmtValue, h, runColor, showVersion, statusBadge, toast, topbar,
} from "./api.js";
import { ChartOptions, chartCard, loadPlotly, MetricChart, plotText, whenVisible } from "./charts.js";
import { compareMedia } from "./media.js";
import { dimensionOf, parallelCoordinates } from "./parcoords.js";

const numbers = (new URLSearchParams(location.search).get("runs") || "")
  .split(",").map((s) => s.trim()).filter(Boolean);
const options = new ChartOptions();
const main = h("main", { class: "page", id: "compare" });
document.body.append(topbar("compare", [h("a", { class: "nav active", href: location.pathname + location.search, text: "Compare" })]), main);

let data = null;
const charts = [];

function pickForm(message) {
  const input = h("input", { class: "input", id: "compare-runs", placeholder: "run numbers, e.g. 3,4,7", value: numbers.join(",") });
  return h(
    "form",
    {
      class: "toolbar",
      onsubmit: (e) => {
        e.preventDefault();
        location.search = `?runs=${encodeURIComponent(input.value.replace(/\s+/g, ""))}`;
      },
    },
    message ? h("span", { class: "muted", text: message }) : null,
    input,
    h("button", { class: "button primary", type: "submit", text: "Compare" }),
  );
}

async function start() {
  if (!numbers.length) {
    main.append(h("h1", { text: "Compare runs" }), h("p", { class: "muted", text: "Select runs in the runs table and press Compare, or list their numbers here." }), pickForm());
    document.body.dataset.ready = "true";
    return;
  }
  try {
    data = await api(`/compare?runs=${encodeURIComponent(numbers.join(","))}`);
  } catch (error) {
    main.append(h("div", { class: "error-box", id: "compare-error", text: error.message }), pickForm());
    return;
  }
  data.runs.forEach((r, i) => { r.color = runColor(i); });
  render();
  document.body.dataset.ready = "true";
}

function render() {
  const metricKeys = data.metrics.keys.filter((k) => !k.startsWith("sys/"));
  const systemKeys = data.metrics.keys.filter((k) => k.startsWith("sys/"));
  clear(main).append(
    h("div", { class: "run-head" }, h("h1", { text: `Comparing ${data.runs.length} run${data.runs.length > 1 ? "s" : ""}` })),
    h("div", { class: "run-chips", id: "run-chips", style: { marginBottom: "18px" } }, data.runs.map(runChip)),
    section("Metrics", "metrics-section", metricsSection(metricKeys, systemKeys)),
    section("Media", "media-section", mediaSection()),
    section("Params", "params-section", paramsSection()),
    section("Parallel coordinates", "parcoords-section", parcoordsSection(metricKeys)),
    section("Scatter", "scatter-section", scatterSection(metricKeys)),
  );
}

function mediaSection() {
  const box = h("div", { id: "media-compare" });
  compareMedia(box, data.runs).catch((error) => toast(error.message));
  return box;
}

function section(title, id, ...content) {
  return h("section", { id }, h("h2", { text: title }), ...content);
}

function runChip(run) {
  const others = data.runs.filter((r) => r !== run).map((r) => r.number);
  return h(
    "span",
    { class: "run-chip", dataset: { number: run.number } },
    h("span", { class: "swatch", style: { background: run.color } }),
    h("a", { href: `/runs/${run.number}`, text: `#${run.number} ${run.name}` }),
    statusBadge(run.status),
    others.length ? h("a", { href: `/compare?runs=${others.join(",")}`, title: "leave this run out", text: "×" }) : null,
  );
}

// -- metrics -------------------------------------------------------------------------------------------
function metricsSection(metricKeys, systemKeys) {
  const grid = h("div", { class: "charts", id: "compare-charts" });
  const addCharts = (keys) => {
    for (const key of keys) {
      const series = data.runs
        .filter((r) => key in r.metrics)
        .map((r) => ({ ref: r.number, label: `#${r.number} ${r.name}`, color: r.color, start: r.start_time }));
      const { card, plot } = chartCard(key, `${series.length} run${series.length > 1 ? "s" : ""}`);
      card.dataset.key = key;
      grid.append(card);
      const chart = new MetricChart(plot, key, series, options, { legend: true });
      charts.push(chart);
      whenVisible(plot, () => chart.load().catch((error) => toast(error.message)));
    }
  };
  addCharts(metricKeys);
  if (!metricKeys.length) grid.append(h("p", { class: "muted", text: "These runs logged no metrics." }));
  options.listeners.add((changes) => {
    for (const chart of charts) (changes.x ? chart.load() : chart.draw());
  });
  const systemToggle = systemKeys.length
    ? h("button", {
      class: "button small", text: `Show ${systemKeys.length} system metrics`,
      onclick: (e) => { e.target.remove(); addCharts(systemKeys); },
    })
    : null;
  const controls = options.controls();
  if (systemToggle) controls.append(systemToggle);
  return [controls, grid, summaryTable(metricKeys)];
}

function summaryTable(keys) {
  if (!keys.length) return null;
  return h(
    "div",
    { class: "table-wrap", style: { marginTop: "14px", maxHeight: "none" } },
    h(
      "table",
      { class: "grid", id: "metric-summary" },
      h("thead", {}, h("tr", {}, h("th", { text: "metric (last · min · max)" }), data.runs.map((r) => h("th", { class: "num" }, runLabel(r))))),
      h("tbody", {}, keys.map((k) => h("tr", {}, h("th", { text: k }), data.runs.map((r) => {
        const m = r.metrics[k];
        return h("td", { class: "num", text: m ? `${fmtValue(m.last)} · ${fmtValue(m.min)} · ${fmtValue(m.max)}` : "" });
      })))),
    ),
  );
}

function runLabel(run) {
  return h("span", {}, h("span", { class: "swatch", style: { display: "inline-block", width: "8px", height: "8px", borderRadius: "50%", background: run.color, marginRight: "5px" } }), `#${run.number}`);
}

// -- params --------------------------------------------------------------------------------------------
function paramsSection() {
  const { keys, differ } = data.params;
  if (!keys.length) return h("p", { class: "muted", text: "These runs have no params." });
  const differs = new Set(differ);
  const onlyDiff = h("input", { type: "checkbox", id: "only-differences", checked: differ.length > 0 && keys.length > 12 });
  const tbody = h("tbody");
  const draw = () => {
    clear(tbody).append(
      ...keys.filter((k) => !onlyDiff.checked || differs.has(k)).map((k) =>
        h("tr", { class: differs.has(k) ? "differs" : "", dataset: { key: k } },
          h("th", { text: k }),
          data.runs.map((r) => h("td", { class: "mono", text: k in r.params ? fmtValue(r.params[k]) : "—" })))),
    );
  };
  onlyDiff.addEventListener("change", draw);
  draw();
  return [
    h("div", { class: "chart-controls" }, h("label", {}, onlyDiff, `only the ${differ.length} that differ`)),
    h("div", { class: "table-wrap", style: { maxHeight: "none" } },
      h("table", { class: "grid", id: "params-table" },
        h("thead", {}, h("tr", {}, h("th", { text: "param" }), data.runs.map((r) => h("th", {}, runLabel(r))))),
        tbody)),
  ];
}

// -- parallel coordinates and scatter ------------------------------------------------------------------
function metricValue(run, key, accessor) {
  const m = run.metrics[key];
  const v = m ? m[accessor] : null;
  return typeof v === "number" && Number.isFinite(v) ? v : null;
}

/** A param as a plotly dimension: numbers as they are, anything else as categories. */
function paramDimension(key) {
  return dimensionOf(key, data.runs.map((r) => r.params[key]));
}

function selectOf(id, items, selected) {
  return h("select", { class: "input", id }, items.map((k) => h("option", { value: k, text: k, selected: k === selected })));
}

const ACCESSORS = ["last", "min", "max"];

function parcoordsSection(metricKeys) {
  const dims = data.params.differ.length ? data.params.differ : data.params.keys;
  if (!metricKeys.length || !dims.length || data.runs.length < 2) {
    return h("p", { class: "muted", text: "Needs two or more runs with params and metrics." });
  }
  const metric = selectOf("parcoords-metric", metricKeys, metricKeys[0]);
  const accessor = selectOf("parcoords-accessor", ACCESSORS, "last");
  const plot = h("div", { id: "parcoords", class: "parcoords" });
  const draw = () => {
    const values = data.runs.map((r) => metricValue(r, metric.value, accessor.value));
    const dimensions = [...dims.slice(0, 12).map(paramDimension), { label: `${metric.value} (${accessor.value})`, values }];
    clear(plot).append(parallelCoordinates(dimensions, values, data.runs.map((r) => `#${r.number} ${r.name}`)));
    plot.dataset.rendered = "true";
  };
  metric.addEventListener("change", draw);
  accessor.addEventListener("change", draw);
  draw();
  return [h("div", { class: "chart-controls" }, h("label", {}, "colour by", metric, accessor)), h("div", { class: "chart-card" }, plot)];
}

function scatterSection(metricKeys) {
  const params = data.params.keys;
  if (!metricKeys.length || !params.length) return h("p", { class: "muted", text: "Needs runs with params and metrics." });
  const xSelect = selectOf("scatter-x", params, data.params.differ[0] || params[0]);
  const ySelect = selectOf("scatter-y", metricKeys, metricKeys[0]);
  const accessor = selectOf("scatter-accessor", ACCESSORS, "last");
  const plot = h("div", { id: "scatter", style: { height: "380px" } });
  const draw = async () => {
    const Plotly = await loadPlotly();
    const dim = paramDimension(xSelect.value);
    const runs = data.runs;
    await Plotly.react(plot, [{
      type: "scatter",
      mode: "markers+text",
      x: dim.values,
      y: runs.map((r) => metricValue(r, ySelect.value, accessor.value)),
      text: runs.map((r) => `#${r.number}`),
      textposition: "top center",
      hovertext: runs.map((r) => plotText(`#${r.number} ${r.name}`)),
      hoverinfo: "text+x+y",
      marker: { size: 11, color: runs.map((r) => r.color), line: { width: 1, color: "#fff" } },
    }], {
      height: 380, margin: { l: 60, r: 20, t: 16, b: 50 }, paper_bgcolor: "#fff", plot_bgcolor: "#fff",
      font: { family: "system-ui, sans-serif", size: 11, color: "#3b4352" },
      xaxis: { title: { text: plotText(xSelect.value) }, gridcolor: "#eef0f3", zeroline: false, tickvals: dim.tickvals, ticktext: dim.ticktext && dim.ticktext.map(plotText) },
      yaxis: { title: { text: plotText(`${ySelect.value} (${accessor.value})`) }, gridcolor: "#eef0f3", zeroline: false },
    }, { displaylogo: false, responsive: true });
    plot.dataset.rendered = "true";
  };
  for (const select of [xSelect, ySelect, accessor]) select.addEventListener("change", draw);
  whenVisible(plot, () => draw().catch((error) => toast(error.message)));
  return [
    h("div", { class: "chart-controls" }, h("label", {}, "param", xSelect), h("label", {}, "metric", ySelect, accessor)),
    h("div", { class: "chart-card" }, plot),
  ];
}

start();
showVersion();
