// One run: overview, metric and system charts, console, code snapshot, artifacts.
// A running run refreshes every second: new points extend the charts, new lines the console.
import {
  api, clear, fmtDate, fmtDuration, fmtValue, h, poll, showVersion, statusBadge, toast, topbar,
} from "./api.js";
import { ChartOptions, chartCard, loadPlotly, MetricChart, whenVisible } from "./charts.js";
import { artifactsPanel, codePanel } from "./files.js";
import { mediaKeys, mediaPanel } from "./media.js";
import { lineageCards } from "./lineage.js";

const LIVE_MS = 1000;
const PLOTLY_LATEST_MS = 1000;
const TABS = [
  ["overview", "Overview"],
  ["charts", "Charts"],
  ["media", "Media"],
  ["system", "System"],
  ["console", "Console"],
  ["code", "Code"],
  ["artifacts", "Artifacts"],
];

const ref = decodeURIComponent(location.pathname.split("/")[2] || "");
const options = new ChartOptions();
const panels = new Map();
const built = new Set();
const charts = new Map(); // key -> MetricChart
let run = null;
let snapshot = null;
let snapshotLoad = Promise.resolve();
let stopLive = null;
let clock = null; // ticks the duration of a running run
let consoleState = null;
let mediaCount = 0;

const head = h("div", { id: "run-head" });
const tabBar = h("nav", { class: "tabs", id: "tabs" });
const body = h("div", { id: "panels" });
document.body.append(topbar("run"), h("main", { class: "page" }, head, tabBar, body));

for (const [id] of TABS) {
  const panel = h("div", { id: `panel-${id}`, hidden: true });
  panels.set(id, panel);
  body.append(panel);
}

async function start() {
  try {
    run = await api(`/runs/${encodeURIComponent(ref)}`);
  } catch (error) {
    clear(head).append(h("div", { class: "error-box", id: "run-error", text: error.message }));
    return;
  }
  document.title = `labkeep · ${run.number} ${run.name}`;
  if (String(run.number) !== ref) history.replaceState(null, "", `/runs/${run.number}${location.hash}`);
  // Only the overview needs the snapshot: the other tabs (charts first) start without it.
  snapshotLoad = api(`/runs/${run.number}/snapshot?optional=true`).then(
    (data) => { snapshot = data; },
    (error) => toast(error.message),
  );
  renderHead();
  renderTabs();
  showTab();
  mediaKeys(run.number).then(
    (keys) => { mediaCount = Object.keys(keys).length; renderTabs(); },
    () => {},
  );
  await snapshotLoad;
  window.addEventListener("hashchange", showTab);
  options.listeners.add((changes) => {
    for (const chart of charts.values()) (changes.x ? chart.load() : chart.draw());
  });
  if (run.status === "running") {
    stopLive = poll(refresh, LIVE_MS);
    clock = setInterval(showDuration, 1000);
  }
  document.body.dataset.ready = "true";
  // The page downloads plotly.js from the start but runs it (on a first visit, a second of
  // the main thread) once a chart has drawn its sketch, or after a while if none asks for it.
  setTimeout(() => loadPlotly().catch(() => {}), PLOTLY_LATEST_MS);
}

// -- header and tabs ----------------------------------------------------------------------------
/** How long the run has taken: while it runs, counted on from its start here (the store's
 * duration advances only with the run's heartbeat, every 30 s). */
function duration() {
  if (run.status !== "running") return run.duration;
  return Math.max(run.duration || 0, Date.now() / 1000 - run.start_time);
}

function showDuration() {
  const d = duration();
  const head = document.getElementById("run-duration");
  if (head) head.textContent = d !== null ? `duration ${fmtDuration(d)}` : "";
  const overview = document.getElementById("overview-duration");
  if (overview) overview.textContent = fmtDuration(d);
}

function stopButton() {
  if (run.status !== "running" || run.deleted) return null;
  let armed = null;
  const button = h("button", {
    class: "button small danger", id: "stop-run", text: "Stop",
    title: "Stop the run as `labkeep stop` does: it ends as interrupted",
    onclick: async () => {
      if (!armed) { // one slip of the mouse does not end a day's training
        button.textContent = "Stop the run?";
        armed = setTimeout(() => { armed = null; button.textContent = "Stop"; }, 5000);
        return;
      }
      clearTimeout(armed);
      button.disabled = true;
      button.textContent = "Stopping…";
      try {
        const result = await api(`/runs/${run.number}/stop`, { method: "POST" });
        toast(`Run ${result.number} ${result.status}`);
      } catch (error) {
        toast(error.message);
        armed = null;
        button.disabled = false;
        button.textContent = "Stop";
        return;
      }
      await refresh();
    },
  });
  return button;
}

/** A sweep run links to its sweep page, a trial to its sweep's. */
function sweepLink() {
  if ("labkeep.sweep_spec" in run.summary) {
    return h("a", { class: "button small", id: "sweep-link", href: `/sweeps/${run.number}`, text: "Sweep" });
  }
  const sweep = run.summary["labkeep.sweep"];
  if (!Number.isInteger(sweep)) return null;
  return h("a", { class: "button small", id: "sweep-link", href: `/sweeps/${sweep}`, text: `Sweep ${sweep}` });
}

function renderHead() {
  const deleteButton = h("button", {
    class: "button small danger", id: "delete-run", text: run.deleted ? "Restore" : "Delete",
    onclick: async () => {
      try {
        await api(`/runs/${run.number}${run.deleted ? "/restore" : ""}`, { method: run.deleted ? "POST" : "DELETE" });
      } catch (error) {
        toast(error.message);
        return;
      }
      run.deleted = !run.deleted;
      toast(run.deleted ? `Moved run ${run.number} to the trash` : `Restored run ${run.number}`);
      renderHead();
    },
  });
  clear(head).append(
    h(
      "div",
      { class: "run-head" },
      h("h1", {}, h("span", { class: "number", text: `#${run.number} ` }), h("span", { id: "run-name", text: run.name || run.uuid.slice(0, 8) })),
      statusBadge(run.status),
      run.deleted ? h("span", { class: "status status-other", text: "in the trash" }) : null,
      h("span", { class: "spacer", style: { flex: "1" } }),
      sweepLink(),
      h("a", { class: "button small", href: `/compare?runs=${run.number}`, text: "Compare…" }),
      stopButton(),
      deleteButton,
    ),
    h(
      "div",
      { class: "run-sub" },
      h("span", {}, "experiment ", h("a", { href: `/?experiment=${encodeURIComponent(run.experiment)}`, text: run.experiment })),
      h("span", { title: fmtDate(run.start_time), text: `started ${fmtDate(run.start_time)}` }),
      h("span", { id: "run-duration", text: duration() !== null ? `duration ${fmtDuration(duration())}` : "" }),
      run.host ? h("span", { text: `${run.user}@${run.host}` }) : null,
    ),
  );
}

function counts() {
  const keys = Object.keys(run.metrics);
  return {
    charts: keys.filter((k) => !k.startsWith("sys/")).length,
    system: keys.filter((k) => k.startsWith("sys/")).length,
    artifacts: run.artifacts.length,
    media: mediaCount,
  };
}

function renderTabs() {
  const n = counts();
  clear(tabBar).append(
    ...TABS.map(([id, label]) =>
      h("a", { href: `#${id}`, dataset: { tab: id } }, label, n[id] ? h("span", { class: "badge", text: String(n[id]) }) : null)),
  );
  markTab();
}

function currentTab() {
  const id = location.hash.slice(1);
  return panels.has(id) ? id : "overview";
}

function markTab() {
  const current = currentTab();
  for (const a of tabBar.querySelectorAll("a")) a.classList.toggle("active", a.dataset.tab === current);
}

function showTab() {
  const current = currentTab();
  markTab();
  for (const [id, panel] of panels) panel.hidden = id !== current;
  if (built.has(current)) return;
  built.add(current);
  const panel = clear(panels.get(current));
  ({
    overview: () => snapshotLoad.then(renderOverview),
    charts: () => renderCharts(panel, (k) => !k.startsWith("sys/"), "No metrics logged yet."),
    system: () => renderCharts(panel, (k) => k.startsWith("sys/"), "No system metrics (they are sampled every 10 s while a run lives)."),
    console: renderConsole,
    code: () => codePanel(panel, run.number),
    media: () => mediaPanel(panel, run.number),
    artifacts: () => artifactsPanel(panel, run.number),
  })[current]();
}

// -- overview -----------------------------------------------------------------------------------------
function kvTable(rows, id) {
  return h("table", { class: "kv", id }, h("tbody", {}, rows.filter(Boolean).map(([k, v]) => h("tr", {}, h("th", { text: k }), h("td", {}, v)))));
}

function gitRows() {
  const git = snapshot && snapshot.git;
  if (!snapshot) return [];
  if (!git || !git.repo) return [["git", "not a git repository"]];
  return [
    ["git commit", h("span", { class: "mono", text: git.commit ? git.commit.slice(0, 12) : "(no commit yet)" })],
    git.branch ? ["git branch", git.branch] : null,
    ["git state", git.dirty ? `dirty (${git.changed_count} changed file${git.changed_count === 1 ? "" : "s"})` : "clean"],
    git.remote_url ? ["git remote", git.remote_url] : null,
  ];
}

function renderOverview() {
  const panel = panels.get("overview");
  const host = (snapshot && snapshot.host) || {};
  const env = (snapshot && snapshot.environment) || {};
  const command = commandText(snapshot);
  const argv = Array.isArray(host.argv) && host.argv.length ? host.argv.join(" ") : null;
  const details = kvTable(
    [
      ["status", statusBadge(run.status)],
      ["uuid", h("span", { class: "mono", text: run.uuid })],
      ["started", fmtDate(run.start_time)],
      ["ended", fmtDate(run.end_time)],
      ["duration", h("span", { id: "overview-duration", text: fmtDuration(duration()) })],
      ["user@host", `${run.user}@${run.host}${run.pid ? ` (pid ${run.pid})` : ""}`],
      run.exit_code !== null ? ["exit code", String(run.exit_code)] : null,
      command ? ["command", h("span", { class: "mono", id: "run-command", text: command })] : null,
      argv ? ["argv", h("span", { class: "mono", text: argv })] : null,
      host.cwd ? ["directory", h("span", { class: "mono", text: host.cwd })] : null,
      env.python_version ? ["python", `${env.python_version} (${env.platform || ""} ${env.machine || ""})`] : null,
      ...gitRows(),
      run.parent_uuid ? ["parent", parentLink()] : null,
      run.reproduces_uuid ? ["rerun of", h("span", { class: "mono", text: run.reproduces_uuid })] : null,
    ],
    "run-details",
  );
  const failure = run.error
    ? h("div", { class: "card", style: { gridColumn: "1 / -1" } }, h("h2", { text: "Failure" }), h("pre", { class: "traceback", id: "traceback", text: run.error }))
    : null;
  clear(panel).append(
    h(
      "div",
      { class: "cards" },
      failure,
      h("div", { class: "card" }, h("h2", { text: "Run" }), details),
      h("div", { class: "card" }, h("h2", { text: "Tags & notes" }), tagsEditor(), notesEditor()),
      h("div", { class: "card" }, h("h2", { text: "Params" }), valuesTable(run.params, "params", "No params.")),
      h("div", { class: "card", id: "metrics-card" }, h("h2", { text: "Metrics" }), metricsTable()),
      Object.keys(run.summary).length ? h("div", { class: "card" }, h("h2", { text: "Summary" }), valuesTable(run.summary, "summary", "")) : null,
      lineageCards(run.number),
      childrenCard(),
    ),
  );
}

/** The parent as a link (`#12 cv-5fold`); its uuid alone when it was purged. */
function parentLink() {
  const p = run.parent;
  if (!p) return h("span", { class: "mono", id: "run-parent", text: run.parent_uuid });
  return h("a", { href: `/runs/${p.number}`, id: "run-parent", text: `#${p.number} ${p.name}` });
}

/** The run's child runs (``init(parent=...)``, a sweep's trials), oldest first; the runs
 * table lists them all. */
function childrenCard() {
  const children = run.children || [];
  if (!children.length) return null;
  const rows = children.map((c) =>
    h("tr", { dataset: { number: c.number } },
      h("th", {}, h("a", { href: `/runs/${c.number}`, text: `#${c.number}` })),
      h("td", {}, h("span", { text: `${c.name} ` }), statusBadge(c.status))));
  const more = run.children_total > children.length
    ? h("p", { class: "muted" }, `${children.length} of ${run.children_total}: `,
      h("a", { href: `/?where=${encodeURIComponent(`parent == '${run.uuid}'`)}&sort=number`, text: "all in the runs table" }))
    : null;
  return h("div", { class: "card", id: "children-card" },
    h("h2", { text: `Child runs (${run.children_total})` }),
    h("table", { class: "kv", id: "run-children" }, h("tbody", {}, rows)), more);
}

/** The ``labkeep run`` command the snapshot records, as typed: ``labkeep run train.py
 * lr=0.01 -- --extra``; null for runs that ``labkeep run`` did not start. */
function commandText(snap) {
  const command = snap && snap.command;
  if (!command || typeof command !== "object" || !command.target) return null;
  const types = new Map(((command.flags && command.flags.flags) || []).map((f) => [f.name, f.type]));
  const words = ["labkeep", "run", String(command.target)];
  for (const [name, value] of Object.entries(command.overrides || {})) {
    // JSON has no float type: a float flag's 2.0 arrives as 2 and reads as the int it is not.
    const float = types.get(name) === "float" && Number.isInteger(value);
    words.push(`${name}=${float ? value.toFixed(1) : fmtValue(value)}`);
  }
  const extra = command.extra_args || [];
  if (extra.length) words.push("--", ...extra.map(String));
  return words.join(" ");
}

function valuesTable(values, id, empty) {
  const keys = Object.keys(values);
  if (!keys.length) return h("p", { class: "muted", text: empty });
  return kvTable(keys.map((k) => [k, h("span", { class: "mono", text: fmtValue(values[k]) })]), id);
}

function metricsTable() {
  const keys = Object.keys(run.metrics).filter((k) => !k.startsWith("sys/"));
  if (!keys.length) return h("p", { class: "muted", text: "No metrics." });
  const num = (text) => h("td", { class: "num", text });
  return h(
    "table",
    { class: "kv wide", id: "metrics-table" },
    h("thead", {}, h("tr", {}, h("th", { text: "key" }), ...["last", "min", "max", "points", "step"].map((t) => h("th", { class: "num", text: t })))),
    h("tbody", {}, keys.map((k) => {
      const m = run.metrics[k];
      return h("tr", {}, h("th", { text: k }), num(fmtValue(m.last)), num(fmtValue(m.min)), num(fmtValue(m.max)), num(String(m.count)), num(String(m.last_step)));
    })),
  );
}

function tagsEditor() {
  const box = h("div", { id: "tags", style: { marginBottom: "10px" } });
  const input = h("input", { class: "input", placeholder: "add a tag", id: "new-tag", size: 14 });
  const edit = async (add, remove) => {
    try {
      const result = await api(`/runs/${run.number}/tags`, { method: "POST", body: { add, remove } });
      run.tags = result.tags;
      draw();
    } catch (error) {
      toast(error.message);
    }
  };
  const draw = () => {
    clear(box).append(
      ...run.tags.map((tag) => h("span", { class: "tag" }, tag, h("button", { text: "×", title: `remove ${tag}`, onclick: () => edit([], [tag]) }))),
      h("form", { style: { display: "inline-flex", gap: "6px" }, onsubmit: (e) => { e.preventDefault(); const t = input.value.trim(); if (t) { input.value = ""; edit([t], []); } } },
        input, h("button", { class: "button small", type: "submit", text: "Add" })),
    );
  };
  draw();
  return box;
}

function notesEditor() {
  const area = h("textarea", { class: "input notes-edit", id: "notes", placeholder: "Notes about this run" });
  area.value = run.notes || "";
  const save = h("button", {
    class: "button small primary", id: "save-notes", text: "Save notes",
    onclick: async () => {
      try {
        await api(`/runs/${run.number}/notes`, { method: "PUT", body: { notes: area.value } });
        run.notes = area.value;
        toast("Notes saved");
      } catch (error) {
        toast(error.message);
      }
    },
  });
  return h("div", {}, area, h("div", { style: { marginTop: "6px" } }, save));
}

// -- charts ---------------------------------------------------------------------------------------------
function renderCharts(panel, wanted, empty) {
  const grid = h("div", { class: "charts" });
  const search = h("input", { class: "input", type: "search", placeholder: "find a metric", style: { width: "220px" } });
  search.addEventListener("input", () => {
    const needle = search.value.toLowerCase();
    for (const card of grid.children) card.hidden = !card.dataset.key.toLowerCase().includes(needle);
  });
  const controls = options.controls();
  controls.prepend(search);
  panel.append(controls, grid);
  panel.grid = grid;
  panel.wanted = wanted;
  const keys = Object.keys(run.metrics).filter(wanted);
  if (!keys.length) grid.append(h("p", { class: "muted empty-charts", text: empty }));
  for (const key of keys) addChart(panel, key);
}

function addChart(panel, key) {
  panel.grid.querySelector(".empty-charts")?.remove();
  const m = run.metrics[key];
  const { card, plot, sub } = chartCard(key, summaryText(m));
  card.dataset.key = key;
  panel.grid.append(card);
  const chart = new MetricChart(plot, key, [{ ref: run.number, label: `${run.number}`, color: "#2f6fde", start: run.start_time }], options);
  chart.sub = sub;
  charts.set(key, chart);
  whenVisible(plot, () => chart.load().catch((error) => toast(error.message)));
}

function summaryText(m) {
  return m ? `last ${fmtValue(m.last)} · ${m.count.toLocaleString()} pts` : "";
}

// -- console ---------------------------------------------------------------------------------------------
async function renderConsole() {
  const panel = panels.get("console");
  const pre = h("pre", { class: "console", id: "console" });
  const follow = h("input", { type: "checkbox", checked: true, id: "follow" });
  const info = h("span", { class: "muted", id: "console-info" });
  panel.append(h("div", { class: "chart-controls" }, h("label", {}, follow, "follow the end"), info), pre);
  consoleState = { pre, follow, info, lastId: 0, count: 0 };
  try {
    const first = await api(`/runs/${run.number}/output?tail=5000`);
    if (first.lines.length === 5000) pre.append(h("span", { class: "line muted", text: "… earlier lines left out …" }));
    appendLines(first);
  } catch (error) {
    pre.append(h("span", { class: "line stderr", text: error.message }));
  }
}

function appendLines(data) {
  const { pre, follow, info } = consoleState;
  const fragment = document.createDocumentFragment();
  for (const line of data.lines) {
    fragment.append(h("span", { class: `line ${line.stream === "stderr" ? "stderr" : ""}`, text: line.text || " " }));
  }
  pre.append(fragment);
  consoleState.count += data.lines.length;
  consoleState.lastId = Math.max(consoleState.lastId, data.last_id);
  pre.dataset.lastId = String(consoleState.lastId);
  info.textContent = consoleState.count ? `${consoleState.count.toLocaleString()} lines` : "No console output recorded.";
  if (follow.checked) pre.scrollTop = pre.scrollHeight;
}

// -- live ---------------------------------------------------------------------------------------------------
async function refresh() {
  const fresh = await api(`/runs/${run.number}`);
  const statusChanged = fresh.status !== run.status;
  const before = run;
  run = fresh;
  showDuration();
  const tasks = [];
  for (const [key, m] of Object.entries(run.metrics)) {
    const chart = charts.get(key);
    if (chart) {
      chart.sub.textContent = summaryText(m);
      if (chart.loaded) tasks.push(chart.update(run.number, m.count));
    } else {
      for (const id of ["charts", "system"]) {
        const panel = panels.get(id);
        if (built.has(id) && panel.wanted(key)) addChart(panel, key);
      }
    }
  }
  if (consoleState) {
    tasks.push(api(`/runs/${run.number}/output?after=${consoleState.lastId}`).then(appendLines));
  }
  await Promise.all(tasks);
  if (Object.keys(before.metrics).length !== Object.keys(run.metrics).length || before.artifacts.length !== run.artifacts.length) renderTabs();
  const metricsCard = document.getElementById("metrics-card");
  if (metricsCard) metricsCard.replaceChildren(h("h2", { text: "Metrics" }), metricsTable());
  if (statusChanged) {
    if (stopLive) stopLive();
    clearInterval(clock);
    renderHead();
    built.delete("overview");
    if (currentTab() === "overview") showTab();
  }
}

start();
showVersion();
