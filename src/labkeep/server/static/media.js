// Media a run logged (labkeep.Image, Histogram, Table): one card per key, with a step slider.
// Images show at the chosen step (each <img> is one request to /media/content), plotly figures
// draw with the bundled plotly.js, histograms show as a heatmap over steps and as bars at the
// chosen step, tables as a table whose columns sort on a click. On the compare page a card
// holds one cell per run, side by side, with the slider over the steps of them all.
import { API, api, clear, fmtValue, h, toast } from "./api.js";
import { loadPlotly, whenVisible } from "./charts.js";

const TABLE_ROWS = 500; // rows drawn at once; sorting covers them all

/** The run's media keys: {key: kind}. */
export async function mediaKeys(ref) {
  return (await api(`/runs/${encodeURIComponent(ref)}/media`)).keys;
}

/** The run page's Media tab. */
export async function mediaPanel(panel, ref) {
  let keys;
  try {
    keys = await mediaKeys(ref);
  } catch (error) {
    panel.append(h("div", { class: "error-box", text: error.message }));
    return;
  }
  const names = Object.keys(keys);
  if (!names.length) {
    panel.append(h("p", { class: "muted", id: "media-empty", text: "No media logged (labkeep.Image, labkeep.Histogram, labkeep.Table)." }));
    return;
  }
  const grid = h("div", { class: "media-grid", id: "media-grid" });
  panel.append(grid);
  for (const key of names) grid.append(mediaCard([{ ref, label: null }], key, keys[key]));
}

/** The compare page's media: for every key any of the runs logged, a card with a cell per run. */
export async function compareMedia(container, runs) {
  const all = await Promise.all(runs.map((r) => mediaKeys(r.number).catch(() => ({}))));
  const kinds = new Map();
  all.forEach((keys) => { for (const [k, kind] of Object.entries(keys)) if (!kinds.has(k)) kinds.set(k, kind); });
  if (!kinds.size) {
    container.append(h("p", { class: "muted", id: "media-empty", text: "None of these runs logged media." }));
    return;
  }
  const grid = h("div", { class: "media-grid compare", id: "media-grid" });
  container.append(grid);
  for (const [key, kind] of [...kinds].sort(([a], [b]) => a.localeCompare(b))) {
    const members = runs.map((r, i) => ({ ref: r.number, label: `#${r.number}`, color: r.color, has: key in all[i] }));
    grid.append(mediaCard(members, key, kind));
  }
}

function mediaCard(runs, key, kind) {
  const title = h("div", { class: "chart-title" }, h("span", { text: key }), h("span", { class: "muted", text: kind }));
  const slider = h("input", { type: "range", class: "media-step", min: "0", max: "0", value: "0", disabled: true });
  const stepLabel = h("span", { class: "muted media-step-label" });
  const cells = h("div", { class: "media-cells" });
  const card = h("div", { class: "chart-card media-card", dataset: { key, kind } }, title, h("div", { class: "media-controls" }, slider, stepLabel), cells);
  const state = { key, kind, steps: [], members: [], slider, stepLabel };
  for (const run of runs) {
    const extra = h("div", { class: "media-extra" }); // a histogram's heatmap over steps
    const view = h("div", { class: "media-view" }); // what the slider's step shows
    const body = h("div", { class: "media-body" }, extra, view);
    const cell = h("div", { class: "media-cell", dataset: { run: String(run.ref) } },
      run.label ? h("div", { class: "media-run", style: { color: run.color || "" }, text: run.label }) : null, body);
    cells.append(cell);
    state.members.push({ ...run, extra, view, entries: [], hist: null });
  }
  whenVisible(card, () => loadCard(state).catch((error) => toast(error.message)));
  slider.addEventListener("input", () => show(state));
  return card;
}

async function loadCard(state) {
  const { key, kind } = state;
  await Promise.all(state.members.map(async (m) => {
    if (m.has === false) return;
    const q = `key=${encodeURIComponent(key)}`;
    if (kind === "histogram") {
      m.hist = await api(`/runs/${encodeURIComponent(m.ref)}/media/histograms?${q}`);
      m.entries = m.hist.steps.map((step, i) => ({ step, index: 0, i }));
    } else {
      m.entries = (await api(`/runs/${encodeURIComponent(m.ref)}/media/entries?${q}`)).entries;
    }
  }));
  state.steps = [...new Set(state.members.flatMap((m) => m.entries.map((e) => e.step)))].sort((a, b) => a - b);
  const { slider } = state;
  slider.max = String(Math.max(0, state.steps.length - 1));
  slider.value = slider.max; // the latest step first
  slider.disabled = state.steps.length < 2;
  if (kind === "histogram") await drawHeatmaps(state);
  await show(state);
}

/** The slider's step, and each run's entries there (or at its last step before it). */
async function show(state) {
  const step = state.steps[Number(state.slider.value)];
  state.stepLabel.textContent = step === undefined ? "" : `step ${step}`;
  state.slider.closest(".media-card").dataset.step = step === undefined ? "" : String(step);
  await Promise.all(state.members.map((m) => showMember(state, m, step)));
}

async function showMember(state, m, step) {
  const at = atStep(m.entries, step);
  const { kind, key } = state;
  const { view } = m;
  if (!at.length) {
    clear(view).append(h("p", { class: "muted media-none", text: m.has === false ? "not logged in this run" : "nothing at this step" }));
    return;
  }
  const shown = at[0].step;
  view.dataset.step = String(shown);
  if (kind === "image") {
    clear(view).append(...at.map((e) => imageFigure(m.ref, key, e)));
  } else if (kind === "histogram") {
    await drawBars(view, m.hist, at[0].i);
  } else if (kind === "plotly") {
    const spec = await content(m.ref, key, at[0]);
    const Plotly = await loadPlotly();
    const plot = view.querySelector(".media-plotly") || h("div", { class: "media-plotly" });
    if (!plot.isConnected) clear(view).append(plot);
    await Plotly.react(plot, spec.data || [], { ...(spec.layout || {}), autosize: true, height: 300 }, { displaylogo: false, responsive: true });
  } else if (kind === "table") {
    const table = await content(m.ref, key, at[0]);
    clear(view).append(tableView(table));
  }
}

function atStep(entries, step) {
  if (step === undefined) return [];
  let best = null;
  for (const e of entries) if (e.step <= step && (best === null || e.step > best)) best = e.step;
  return best === null ? [] : entries.filter((e) => e.step === best).sort((a, b) => a.index - b.index);
}

function contentUrl(ref, key, entry) {
  const q = new URLSearchParams({ key, step: String(entry.step), index: String(entry.index) });
  return `${API}/runs/${encodeURIComponent(ref)}/media/content?${q}`;
}

async function content(ref, key, entry) {
  const path = contentUrl(ref, key, entry).slice(API.length);
  return api(path);
}

function imageFigure(ref, key, entry) {
  const meta = entry.meta || {};
  const img = h("img", {
    class: "media-image", src: contentUrl(ref, key, entry), alt: meta.caption || `${key} step ${entry.step}`,
    width: meta.width, height: meta.height, dataset: { step: String(entry.step), index: String(entry.index) },
  });
  return h("figure", { class: "media-figure" }, img, meta.caption ? h("figcaption", { text: meta.caption }) : null);
}

// -- histograms --------------------------------------------------------------------------------
async function drawHeatmaps(state) {
  const Plotly = await loadPlotly();
  for (const m of state.members) {
    if (!m.hist) continue;
    const grid = m.hist.grid;
    const centres = grid.slice(0, -1).map((x, i) => (x + grid[i + 1]) / 2);
    const heat = h("div", { class: "media-heatmap" });
    clear(m.extra).append(heat);
    await Plotly.newPlot(heat, [{
      type: "heatmap", x: m.hist.steps, y: centres, z: centres.map((_, b) => m.hist.z.map((row) => row[b])),
      colorscale: "Blues", reversescale: true, showscale: false, hovertemplate: "step %{x}<br>%{y:.4g}: %{z}<extra></extra>",
    }], { height: 220, margin: { l: 50, r: 10, t: 10, b: 30 }, xaxis: { title: { text: "step" } } }, { displaylogo: false, responsive: true });
  }
}

async function drawBars(view, hist, i) {
  const Plotly = await loadPlotly();
  const { counts, edges } = hist.histograms[i];
  const centres = counts.map((_, b) => (edges[b] + edges[b + 1]) / 2);
  const widths = counts.map((_, b) => edges[b + 1] - edges[b]);
  const plot = view.querySelector(".media-bars") || h("div", { class: "media-bars" });
  if (!plot.isConnected) clear(view).append(plot);
  plot.dataset.counts = counts.join(",");
  await Plotly.react(plot, [{ type: "bar", x: centres, y: counts, width: widths, marker: { color: "#2f6fde" } }],
    { height: 200, margin: { l: 50, r: 10, t: 10, b: 30 }, bargap: 0 }, { displaylogo: false, responsive: true });
}

// -- tables ------------------------------------------------------------------------------------
function tableView(table) {
  const { columns, data } = table;
  let order = data.map((_, i) => i);
  let sortBy = null;
  let ascending = true;
  const head = h("thead");
  const body = h("tbody");
  const note = h("p", { class: "muted media-table-note" });
  const compare = (a, b) => {
    if (a === b) return 0;
    if (a === null || a === undefined) return 1; // empty cells last either way
    if (b === null || b === undefined) return -1;
    if (typeof a === "number" && typeof b === "number") return ascending ? a - b : b - a;
    const c = String(a).localeCompare(String(b), undefined, { numeric: true });
    return ascending ? c : -c;
  };
  const draw = () => {
    clear(head).append(h("tr", {}, columns.map((name, c) => h("th", {
      class: `sortable${sortBy === c ? (ascending ? " asc" : " desc") : ""}`, text: name, title: "sort by this column",
      onclick: () => {
        ascending = sortBy === c ? !ascending : true;
        sortBy = c;
        order = data.map((_, i) => i).sort((x, y) => compare(data[x][c], data[y][c]) || x - y);
        draw();
      },
    }))));
    clear(body).append(...order.slice(0, TABLE_ROWS).map((r) => h("tr", {}, data[r].map((v) => h("td", { class: typeof v === "number" ? "num" : "", text: fmtValue(v) })))));
    note.textContent = data.length > TABLE_ROWS ? `first ${TABLE_ROWS} of ${data.length.toLocaleString()} rows` : `${data.length.toLocaleString()} row${data.length === 1 ? "" : "s"}`;
  };
  draw();
  return h("div", { class: "media-table-wrap" }, h("table", { class: "kv wide media-table" }, head, body), note);
}
