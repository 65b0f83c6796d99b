// A sweep: each trial's objective with the best so far, parallel coordinates of the searched
// params against the objective, the params' importances (computed by the server with
// Optuna's evaluators, as `labkeep sweep show` does), one slice plot per param, the trials.
// A running sweep refreshes every second, like a running run's page.
import {
  api, clear, fmtDate, fmtValue, h, poll, showVersion, statusBadge, toast, topbar,
} from "./api.js";
import { loadPlotly, plotText } from "./charts.js";
import { dimensionOf, parallelCoordinates } from "./parcoords.js";

const LIVE_MS = 1000;
const ref = decodeURIComponent(location.pathname.split("/")[2] || "");
const head = h("div", { id: "sweep-head" });
const body = h("div", { id: "sweep-body" });
document.body.append(
  topbar("sweep", [h("a", { class: "nav active", href: location.pathname, text: "Sweep" })]),
  h("main", { class: "page" }, head, body),
);

let data = null;
let drawn = "";
let stopLive = null;

const LAYOUT = {
  margin: { l: 60, r: 20, t: 16, b: 46 }, paper_bgcolor: "#fff", plot_bgcolor: "#fff",
  font: { family: "system-ui, sans-serif", size: 11, color: "#3b4352" },
};
const CONFIG = { displaylogo: false, responsive: true };

async function start() {
  try {
    data = await api(`/sweeps/${encodeURIComponent(ref)}`);
  } catch (error) {
    clear(head).append(h("div", { class: "error-box", id: "sweep-error", text: error.message }));
    return;
  }
  document.title = `labkeep · sweep ${data.sweep.number}`;
  if (String(data.sweep.number) !== ref) history.replaceState(null, "", `/sweeps/${data.sweep.number}`);
  render();
  if (data.sweep.status === "running") stopLive = poll(refresh, LIVE_MS);
  document.body.dataset.ready = "true";
  await draw().catch((error) => toast(error.message));
}

async function refresh() {
  data = await api(`/sweeps/${data.sweep.number}`);
  render();
  await draw();
  if (data.sweep.status !== "running" && stopLive) {
    stopLive();
    stopLive = null;
  }
}

/** Values of the trials that have one (completed with the objective logged). */
function scored() {
  return data.trials.filter((t) => typeof t.value === "number");
}

function runsLink() {
  return `/?${new URLSearchParams({ where: `sweep == ${data.sweep.number}` })}`;
}

// -- the parts that are plain HTML, rebuilt on every refresh ----------------------------------
function render() {
  const { sweep, counts } = data;
  const done = counts.completed + counts.failed + counts.pruned;
  const best = data.best;
  clear(head).append(
    h(
      "div",
      { class: "run-head" },
      h("h1", {}, h("span", { class: "number", text: `#${sweep.number} ` }), h("span", { id: "sweep-name", text: sweep.name || `sweep of ${data.target}` })),
      h("span", { id: "sweep-status" }, statusBadge(sweep.status)),
      h("span", { class: "spacer", style: { flex: "1" } }),
      h("a", { class: "button small", id: "sweep-run-link", href: `/runs/${sweep.number}`, text: "Sweep run" }),
      h("a", { class: "button small", id: "sweep-runs-link", href: runsLink(), text: "Trials in the runs table" }),
    ),
    h(
      "div",
      { class: "run-sub" },
      data.objective ? h("span", { id: "sweep-objective", text: `${data.direction} ${data.objective}` }) : null,
      h("span", { text: `optimizer ${data.optimizer}` }),
      data.pruner ? h("span", { text: `pruner ${data.pruner}` }) : null,
      h("span", { class: "mono", text: data.target }),
      h("span", { id: "sweep-progress", text: `${done} of ${counts.total} trials done (${counts.completed} completed, ${counts.failed} failed${counts.pruned ? `, ${counts.pruned} pruned` : ""})` }),
      h("span", { title: fmtDate(sweep.start_time), text: `started ${fmtDate(sweep.start_time)}` }),
    ),
    h(
      "div",
      { class: "run-sub", id: "sweep-best" },
      best
        ? h("span", {}, "best ", h("a", { href: `/runs/${best.number}`, text: `run ${best.number}` }), `: ${data.objective} = ${fmtValue(best.value)} `,
          h("span", { class: "mono", text: paramText(data.trials.find((t) => t.number === best.number)) }))
        : h("span", { class: "muted", text: "no finished trial yet" }),
    ),
  );
  if (!body.childElementCount) {
    body.append(
      section("Objective per trial", "objective-section", h("div", { class: "chart-card" }, h("div", { id: "objective-plot", style: { height: "340px" } }))),
      section("Parallel coordinates", "parcoords-section", h("div", { class: "chart-card" }, h("div", { id: "sweep-parcoords", class: "parcoords" }))),
      section("Parameter importances", "importances-section", h("div", { id: "importances" })),
      section("Slices", "slices-section", h("div", { class: "charts", id: "slices" })),
      section("Trials", "trials-section", h("div", { id: "trials" })),
    );
  }
  clear(document.getElementById("trials")).append(trialsTable());
}

function section(title, id, ...content) {
  return h("section", { id, style: { marginTop: "18px" } }, h("h2", { text: title }), ...content);
}

function paramText(trial) {
  if (!trial) return "";
  return Object.entries(trial.params).map(([k, v]) => `${k}=${fmtValue(v)}`).join(" ");
}

/** The trials, best first (as `labkeep sweep show` lists them). */
function trialsTable() {
  const keys = Object.keys(data.space);
  const sign = data.direction === "maximize" ? -1 : 1;
  const rows = [...data.trials].sort((a, b) => {
    const av = typeof a.value === "number";
    const bv = typeof b.value === "number";
    if (av !== bv) return av ? -1 : 1;
    return (av ? sign * (a.value - b.value) : 0) || a.number - b.number;
  });
  if (!rows.length) return h("p", { class: "muted", text: "No trial has started yet." });
  return h(
    "div",
    { class: "table-wrap", style: { maxHeight: "none" } },
    h(
      "table",
      { class: "grid", id: "trials-table" },
      h("thead", {}, h("tr", {}, h("th", { class: "num", text: "trial" }), h("th", { class: "num", text: "run" }), h("th", { text: "status" }),
        keys.map((k) => h("th", { text: k })), h("th", { class: "num", text: data.objective || "objective" }))),
      h("tbody", {}, rows.map((t) => h(
        "tr",
        { dataset: { number: t.number } },
        h("td", { class: "num", text: t.index === null ? "" : String(t.index) }),
        h("td", { class: "num" }, h("a", { href: `/runs/${t.number}`, text: `#${t.number}` })),
        h("td", {}, statusBadge(t.status)),
        keys.map((k) => h("td", { class: "mono", text: fmtValue(t.params[k]) })),
        h("td", { class: "num", text: fmtValue(t.value) }),
      ))),
    ),
  );
}

// -- charts, redrawn when the trials change ---------------------------------------------------
async function draw() {
  const signature = JSON.stringify([data.trials, data.importances]);
  if (signature === drawn) return;
  drawn = signature;
  drawParcoords();
  const Plotly = await loadPlotly();
  await Promise.all([drawObjective(Plotly), drawImportances(Plotly), drawSlices(Plotly)]);
}

function hoverOf(trials) {
  return trials.map((t) => plotText(`#${t.number} · trial ${t.index ?? "?"}<br>${paramText(t)}`));
}

async function drawObjective(Plotly) {
  const plot = document.getElementById("objective-plot");
  const trials = scored();
  const x = trials.map((t) => t.index ?? t.number);
  const better = data.direction === "maximize" ? Math.max : Math.min;
  const bestSoFar = [];
  for (const t of trials) bestSoFar.push(bestSoFar.length ? better(bestSoFar[bestSoFar.length - 1], t.value) : t.value);
  await Plotly.react(plot, [
    {
      type: "scatter", mode: "markers", name: plotText(data.objective || "objective"),
      x, y: trials.map((t) => t.value), customdata: trials.map((t) => t.number),
      hovertext: hoverOf(trials), hoverinfo: "text+y", marker: { size: 9, color: "#2f6fde" },
    },
    {
      type: "scatter", mode: "lines", name: "best so far", x, y: bestSoFar,
      line: { shape: "hv", color: "#e8590c", width: 2 }, hoverinfo: "y",
    },
  ], {
    ...LAYOUT, height: 340, showlegend: true, legend: { orientation: "h", y: 1.08 },
    xaxis: { title: { text: "trial" }, gridcolor: "#eef0f3", zeroline: false, dtick: trials.length < 20 ? 1 : undefined },
    yaxis: { title: { text: plotText(data.objective || "objective") }, gridcolor: "#eef0f3", zeroline: false },
  }, CONFIG);
  if (!plot.dataset.clickable) {
    plot.dataset.clickable = "true";
    plot.on("plotly_click", (event) => {
      const number = event.points[0] && event.points[0].customdata;
      if (number) location.href = `/runs/${number}`;
    });
  }
  plot.dataset.points = String(trials.length);
  plot.dataset.rendered = "true";
}

function drawParcoords() {
  const box = document.getElementById("sweep-parcoords");
  const keys = Object.keys(data.space);
  const trials = data.trials;
  if (!keys.length || !trials.length) {
    clear(box).append(h("p", { class: "muted", text: "No trial has started yet." }));
    return;
  }
  const values = trials.map((t) => (typeof t.value === "number" ? t.value : null));
  const dimensions = [
    ...keys.map((k) => dimensionOf(k, trials.map((t) => t.params[k]))),
    { label: data.objective || "objective", values },
  ];
  clear(box).append(parallelCoordinates(dimensions, values, trials.map((t) => `#${t.number} ${paramText(t)}`)));
  box.dataset.lines = String(trials.length);
  box.dataset.rendered = "true";
}

async function drawImportances(Plotly) {
  const box = document.getElementById("importances");
  const entries = Object.entries(data.importances).sort((a, b) => a[1] - b[1]);
  if (!entries.length) {
    const why = Object.keys(data.space).length < 2
      ? "Importances compare two or more searched params."
      : "Importances appear once three trials have finished.";
    clear(box).append(h("p", { class: "muted", id: "importances-empty", text: why }));
    return;
  }
  let plot = document.getElementById("importances-plot");
  if (!plot) {
    plot = h("div", { id: "importances-plot" });
    clear(box).append(h("div", { class: "chart-card" }, plot));
  }
  const height = 80 + 34 * entries.length;
  await Plotly.react(plot, [{
    type: "bar", orientation: "h", x: entries.map(([, v]) => v), y: entries.map(([k]) => plotText(k)),
    text: entries.map(([, v]) => v.toFixed(2)), textposition: "auto", marker: { color: "#2f6fde" }, hoverinfo: "x+y",
  }], {
    ...LAYOUT, height, margin: { ...LAYOUT.margin, l: 120 },
    xaxis: { title: { text: `importance for ${plotText(data.objective || "the objective")}` }, range: [0, 1], gridcolor: "#eef0f3" },
    yaxis: { automargin: true },
  }, CONFIG);
  plot.dataset.params = entries.map(([k]) => k).reverse().join(",");
  plot.dataset.rendered = "true";
}

async function drawSlices(Plotly) {
  const grid = document.getElementById("slices");
  const trials = scored();
  const keys = Object.keys(data.space);
  for (const key of keys) {
    let plot = grid.querySelector(`[data-param="${CSS.escape(key)}"]`);
    if (!plot) {
      plot = h("div", { class: "chart", dataset: { param: key }, style: { height: "280px" } });
      grid.append(h("div", { class: "chart-card" }, h("div", { class: "chart-title" }, h("span", { text: key }), h("span", { class: "muted", text: data.spelled[key] || "" })), plot));
    }
    const spec = data.space[key] || {};
    const categorical = spec.kind === "choice" && !spec.values.every((v) => typeof v === "number");
    await Plotly.react(plot, [{
      type: "scatter", mode: "markers",
      x: trials.map((t) => (categorical ? fmtValue(t.params[key]) : t.params[key])),
      y: trials.map((t) => t.value), customdata: trials.map((t) => t.number),
      hovertext: hoverOf(trials), hoverinfo: "text+y",
      marker: { size: 9, color: trials.map((t) => t.index ?? t.number), colorscale: "Blues", showscale: false, line: { width: 1, color: "#2f6fde" } },
    }], {
      ...LAYOUT, height: 280,
      xaxis: { title: { text: plotText(key) }, type: categorical ? "category" : spec.kind === "loguniform" ? "log" : "-", gridcolor: "#eef0f3", zeroline: false },
      yaxis: { title: { text: plotText(data.objective || "objective") }, gridcolor: "#eef0f3", zeroline: false },
    }, CONFIG);
    plot.dataset.points = String(trials.length);
    plot.dataset.rendered = "true";
  }
}

start();
showVersion();
