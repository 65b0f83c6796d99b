// The runs table: filter (query language), sort, pick columns, page, select, tag, delete, live refresh.
// Child runs (init(parent=...), a sweep's trials) nest under their parent: a parent row has an
// expander with its children's count, which loads them (oldest first) below it. A filter, the
// trash and the "Flat" switch list every matching run on a row of its own.
import {
  api, ApiError, clear, fmtAgo, fmtDate, fmtDuration, fmtValue, h, keyRef, poll, showVersion,
  statusBadge, toast, topbar,
} from "./api.js";

const PAGE_SIZES = [25, 50, 100, 200, 500];
const COLUMNS_KEY = "labkeep.columns";
const OPTIONAL_ATTRIBUTES = {
  experiment: { label: "experiment", sort: "experiment", cell: (r) => r.experiment },
  user: { label: "user", sort: "user", cell: (r) => r.user },
  host: { label: "host", sort: "host", cell: (r) => r.host },
  ended: { label: "ended", sort: "ended", cell: (r) => fmtDate(r.end_time) },
  group: { label: "group", sort: "group", cell: (r) => r.group || "" },
  job_type: { label: "job type", sort: "job_type", cell: (r) => r.job_type || "" },
  notes: { label: "notes", cell: (r) => r.notes },
};

const url = new URLSearchParams(location.search);
const state = {
  experiment: url.get("experiment") || "",
  where: url.get("where") || "",
  sort: url.get("sort") || "",
  offset: Number(url.get("offset") || 0),
  limit: PAGE_SIZES.includes(Number(url.get("limit"))) ? Number(url.get("limit")) : 50,
  deleted: url.get("deleted") === "true",
  flat: url.get("flat") === "true",
};
/** Children shown under an expanded parent, by the parent's uuid: { runs, total }. */
const expanded = new Map();
const CHILDREN_LIMIT = 500;
const selected = new Set();
let data = null;
let loading = null;
let stopLive = null;
let columnChoice = loadColumnChoice();

// -- skeleton ---------------------------------------------------------------------------------
const compareLink = h("a", { class: "nav", href: "/compare", text: "Compare", id: "compare-nav" });
const experimentList = h("div", { id: "experiments" });
const filterInput = h("input", {
  class: "input filter", id: "filter", type: "search", spellcheck: "false", autocomplete: "off",
  placeholder: "filter: metrics.loss < 0.2 and params.lr >= 1e-3 and 'baseline' in tags",
  "aria-label": "filter runs",
});
filterInput.value = state.where;
const filterError = h("pre", { class: "query-error", id: "filter-error", hidden: true });
const liveDot = h("span", { class: "live-dot", text: "live", hidden: true, id: "live" });
const picker = h("div", { class: "picker", id: "column-picker", hidden: true });
const columnsButton = h("button", {
  class: "button", id: "columns-button", type: "button", text: "Columns",
  onclick: () => togglePicker(),
});
const flatCheck = h("input", {
  type: "checkbox", id: "flat-toggle", checked: state.flat,
  onchange: (event) => { state.flat = event.target.checked; state.offset = 0; pushUrl(); load(); },
});
const flatToggle = h("label", { class: "flat-toggle", title: "every run on its own row, child runs too" }, flatCheck, " Flat");
const selectionCount = h("strong");
const tagInput = h("input", { class: "input", placeholder: "tag", id: "tag-input", size: 12 });
const selectionBar = h(
  "div",
  { class: "selection-bar", id: "selection-bar", hidden: true },
  selectionCount,
  h("button", { class: "button small primary", id: "compare-selected", text: "Compare", onclick: compareSelected }),
  h("span", { class: "muted", text: "·" }),
  tagInput,
  h("button", { class: "button small", id: "add-tag", text: "Add tag", onclick: addTagToSelected }),
  h("span", { class: "muted", text: "·" }),
  h("button", { class: "button small danger", id: "delete-selected", onclick: deleteSelected }),
  h("span", { class: "spacer", style: { flex: "1" } }),
  h("button", { class: "button small", text: "Clear selection", onclick: () => { selected.clear(); render(); } }),
);
const thead = h("thead");
const tbody = h("tbody");
const table = h("table", { class: "grid", id: "runs-table" }, thead, tbody);
const pager = h("div", { class: "pager", id: "pager" });
const title = h("h2", { id: "table-title" });

document.body.append(
  topbar("runs", [compareLink]),
  h(
    "div",
    { class: "layout" },
    h("aside", { class: "sidebar" }, h("h3", { text: "Experiments" }), experimentList),
    h(
      "main",
      { class: "content" },
      h(
        "form",
        { class: "toolbar", id: "filter-form", onsubmit: (e) => { e.preventDefault(); applyFilter(); } },
        filterInput,
        h("button", { class: "button primary", type: "submit", text: "Filter" }),
        h("span", { class: "picker-anchor" }, columnsButton, picker),
        flatToggle,
        liveDot,
      ),
      filterError,
      h("div", { class: "toolbar" }, title),
      selectionBar,
      h("div", { class: "table-wrap" }, table),
      pager,
    ),
  ),
);
document.addEventListener("click", (event) => {
  if (!picker.hidden && !picker.contains(event.target) && event.target !== columnsButton) picker.hidden = true;
});
window.addEventListener("popstate", () => location.reload());

// -- loading ------------------------------------------------------------------------------------
function query() {
  const q = new URLSearchParams();
  if (state.experiment) q.set("experiment", state.experiment);
  if (state.where.trim()) q.set("where", state.where.trim());
  if (state.sort) q.set("sort", state.sort);
  if (state.offset) q.set("offset", String(state.offset));
  if (state.limit !== 50) q.set("limit", String(state.limit));
  if (state.deleted) q.set("deleted", "true");
  if (state.flat) q.set("flat", "true");
  return q;
}

/** Whether the page nests children under their parents (no filter, not the trash, not flat). */
function nested() {
  return !state.flat && !state.deleted && !state.where.trim();
}

function pushUrl() {
  const q = query().toString();
  history.replaceState(null, "", q ? `/?${q}` : "/");
}

async function fetchChildren(uuid) {
  const q = new URLSearchParams({ parent: uuid, sort: "number", limit: String(CHILDREN_LIMIT) });
  const page = await api(`/runs?${q}`);
  return { runs: page.runs, total: page.total };
}

async function toggleChildren(run) {
  if (expanded.has(run.uuid)) {
    expanded.delete(run.uuid);
  } else {
    try {
      expanded.set(run.uuid, await fetchChildren(run.uuid));
    } catch (error) {
      toast(error.message);
      return;
    }
  }
  render();
  updateLive();
}

/** Every expanded parent's children, afresh (live refresh); a parent no longer listed closes. */
async function reloadChildren(runs) {
  const listed = new Set();
  const walk = (list) => {
    for (const r of list) {
      listed.add(r.uuid);
      if (expanded.has(r.uuid)) walk(expanded.get(r.uuid).runs);
    }
  };
  walk(runs);
  for (const uuid of [...expanded.keys()]) if (!listed.has(uuid)) expanded.delete(uuid);
  await Promise.all([...expanded.keys()].map(async (uuid) => {
    try {
      expanded.set(uuid, await fetchChildren(uuid));
    } catch {
      expanded.delete(uuid);
    }
  }));
}

async function load({ quiet = false } = {}) {
  const q = query();
  q.delete("flat");
  q.set("limit", String(state.limit));
  if (nested()) q.set("top", "true");
  flatCheck.disabled = Boolean(state.where.trim() || state.deleted);
  const request = (async () => {
    const page = await api(`/runs?${q}`);
    if (nested()) await reloadChildren(page.runs);
    else expanded.clear();
    return page;
  })();
  loading = request;
  let result;
  try {
    result = await request;
  } catch (error) {
    if (loading !== request) return;
    if (error instanceof ApiError && error.status === 400) {
      filterError.textContent = error.message;
      filterError.hidden = false;
      filterInput.classList.add("invalid");
      filterInput.setAttribute("aria-invalid", "true");
    } else if (!quiet) {
      toast(error.message);
    }
    return;
  }
  if (loading !== request) return;
  filterError.hidden = true;
  filterInput.classList.remove("invalid");
  filterInput.removeAttribute("aria-invalid");
  data = result;
  render();
  table.dataset.query = q.toString(); // what the rows show (tests and scripts wait on it)
  updateLive();
  document.body.dataset.ready = "true";
  if (!window.labkeepReadyAt) window.labkeepReadyAt = performance.now();
}

async function loadExperiments() {
  let experiments = [];
  try {
    experiments = await api("/experiments");
  } catch {
    return;
  }
  const total = experiments.reduce((n, e) => n + e.runs, 0);
  const link = (label, count, params, active) =>
    h(
      "a",
      {
        href: `/?${new URLSearchParams(params)}`, class: active ? "active" : "",
        onclick: (event) => {
          event.preventDefault();
          state.experiment = params.experiment || "";
          state.deleted = params.deleted === "true";
          state.offset = 0;
          selected.clear();
          pushUrl();
          loadExperiments();
          load();
        },
      },
      h("span", { text: label }),
      count === null ? null : h("span", { class: "count", text: count.toLocaleString() }),
    );
  clear(experimentList).append(
    link("All runs", total, {}, !state.experiment && !state.deleted),
    ...experiments.map((e) => link(e.name, e.runs, { experiment: e.name }, !state.deleted && state.experiment === e.name)),
    h("hr"),
    link("Trash", null, { deleted: "true" }, state.deleted),
  );
}

function applyFilter() {
  state.where = filterInput.value;
  state.offset = 0;
  pushUrl();
  load();
}

function updateLive() {
  const children = [...expanded.values()].flatMap((c) => c.runs);
  const running = data && [...data.runs, ...children].some((r) => r.status === "running");
  liveDot.hidden = !running;
  if (running && !stopLive) stopLive = poll(() => load({ quiet: true }), 2000, () => picker.hidden);
  if (!running && stopLive) {
    stopLive();
    stopLive = null;
  }
}

// -- columns ----------------------------------------------------------------------------------
function loadColumnChoice() {
  try {
    return JSON.parse(localStorage.getItem(COLUMNS_KEY) || "null");
  } catch {
    return null;
  }
}

function saveColumnChoice(choice) {
  columnChoice = choice;
  localStorage.setItem(COLUMNS_KEY, JSON.stringify(choice));
}

/** Without a saved choice: the params whose values differ on this page (else a couple of
 * the commonest), and the metrics, those that differ first: few enough that the metric
 * columns fit a laptop's width. Every key stays one click away in the picker. */
function autoColumns(runs) {
  const values = new Map();
  const metricValues = new Map();
  for (const run of runs) {
    for (const [k, v] of Object.entries(run.params)) {
      if (!values.has(k)) values.set(k, new Set());
      values.get(k).add(JSON.stringify(v));
    }
    for (const [k, m] of Object.entries(run.metrics)) {
      if (k.startsWith("sys/")) continue;
      if (!metricValues.has(k)) metricValues.set(k, []);
      metricValues.get(k).push(JSON.stringify(m.last));
    }
  }
  const count = (k) => runs.filter((r) => k in r.params).length;
  const byCount = (a, b) => count(b) - count(a) || a.localeCompare(b);
  const differing = [...values.keys()].filter((k) => values.get(k).size > 1).sort(byCount);
  const params = (differing.length ? differing : [...values.keys()].sort(byCount).slice(0, 2)).slice(0, 4);
  const differs = (k) => metricValues.get(k).length < runs.length || new Set(metricValues.get(k)).size > 1;
  const metrics = [...metricValues.keys()]
    .sort((a, b) => differs(b) - differs(a) || metricValues.get(b).length - metricValues.get(a).length || a.localeCompare(b))
    .slice(0, 5);
  return { attrs: state.experiment ? [] : ["experiment"], params, metrics, summary: [] };
}

function currentColumns() {
  const choice = columnChoice || autoColumns(data ? data.runs : []);
  const cols = [
    { id: "number", label: "#", sort: "number", class: "number num", cell: numberCell },
    { id: "name", label: "name", sort: "name", class: "name", cell: nameCell },
    { id: "status", label: "status", sort: "status", cell: (r) => statusBadge(r.status) },
  ];
  for (const a of choice.attrs || []) {
    if (OPTIONAL_ATTRIBUTES[a]) cols.push({ id: a, ...OPTIONAL_ATTRIBUTES[a] });
  }
  cols.push(
    { id: "started", label: "started", sort: "started", cell: (r) => h("span", { title: fmtDate(r.start_time), text: fmtAgo(r.start_time) }) },
    { id: "duration", label: "duration", sort: "duration", class: "num", cell: (r) => fmtDuration(r.duration) },
    { id: "tags", label: "tags", cell: tagsCell },
  );
  // Metrics before params: the results stay in view when the params run off the side.
  for (const k of choice.metrics || []) {
    cols.push({
      id: `m:${k}`, label: k, group: "metric", sort: keyRef("metrics", k), class: "col-metric num",
      cell: (r) => metricCell(r.metrics[k]),
    });
  }
  for (const k of choice.params || []) {
    cols.push({
      id: `p:${k}`, label: k, group: "param", sort: keyRef("params", k), class: "col-param",
      cell: (r) => valueCell(r.params[k], k in r.params),
    });
  }
  for (const k of choice.summary || []) {
    cols.push({
      id: `s:${k}`, label: k, group: "summary", sort: keyRef("summary", k), class: "col-summary",
      cell: (r) => valueCell(r.summary[k], k in r.summary),
    });
  }
  return cols;
}

function togglePicker() {
  picker.hidden = !picker.hidden;
  if (!picker.hidden) renderPicker();
}

function renderPicker() {
  const choice = structuredClone(columnChoice || autoColumns(data ? data.runs : []));
  const keys = data ? data.keys : { params: [], metrics: [], summary: [] };
  const search = h("input", { class: "input", placeholder: "find a key", id: "column-search", type: "search" });
  const groups = h("div");
  const section = (label, group, options) => {
    if (!options.length) return null;
    return [
      h("h3", { text: label }),
      ...options.map((key) =>
        h(
          "label",
          { dataset: { key: key.toLowerCase() } },
          h("input", {
            type: "checkbox", checked: (choice[group] || []).includes(key),
            onchange: (event) => {
              const list = new Set(choice[group] || []);
              if (event.target.checked) list.add(key);
              else list.delete(key);
              choice[group] = [...list];
              saveColumnChoice(choice);
              render();
            },
          }),
          h("span", { text: key, title: key }),
        ),
      ),
    ];
  };
  groups.append(
    ...[
      section("Attributes", "attrs", Object.keys(OPTIONAL_ATTRIBUTES)),
      section("Params", "params", keys.params),
      section("Metrics", "metrics", keys.metrics),
      section("Summary", "summary", keys.summary),
    ].flat().filter(Boolean),
  );
  search.addEventListener("input", () => {
    const needle = search.value.toLowerCase();
    for (const label of groups.querySelectorAll("label")) label.hidden = !label.dataset.key.includes(needle);
  });
  clear(picker).append(
    search,
    groups,
    h("div", { class: "toolbar", style: { marginTop: "10px" } },
      h("button", {
        class: "button small", type: "button", text: "Reset to automatic",
        onclick: () => { localStorage.removeItem(COLUMNS_KEY); columnChoice = null; renderPicker(); render(); },
      })),
  );
}

// -- cells ----------------------------------------------------------------------------------------
function numberCell(r) {
  return h("a", { href: `/runs/${r.number}`, text: String(r.number) });
}

function nameCell(r, depth = 0) {
  const link = h("a", { href: `/runs/${r.number}`, text: r.name || r.uuid.slice(0, 8), title: r.name });
  const count = Object.values(r.children || {}).reduce((n, c) => n + c, 0);
  if (!nested()) return link;
  const open = expanded.has(r.uuid);
  const byStatus = Object.entries(r.children || {}).map(([s, n]) => `${n} ${s}`).join(", ");
  const expander = count
    ? h("button", {
      class: "expander", type: "button", text: `${open ? "▾" : "▸"} ${count}`,
      title: `${open ? "hide" : "show"} ${count} child run${count > 1 ? "s" : ""} (${byStatus})`,
      "aria-expanded": String(open), "aria-label": `${open ? "hide" : "show"} the child runs of run ${r.number}`,
      onclick: (event) => { event.stopPropagation(); toggleChildren(r); },
    })
    : h("span", { class: "expander-space" });
  return h("span", { class: "tree-cell", style: { paddingLeft: `${depth * 18}px` } }, expander, link);
}

function valueCell(value, present) {
  if (!present) return "";
  const text = fmtValue(value);
  return h("span", { text, title: typeof value === "string" ? value : JSON.stringify(value) });
}

function metricCell(m) {
  if (!m) return "";
  const tip = `last ${fmtValue(m.last)} (step ${m.last_step})\nmin ${fmtValue(m.min)}\nmax ${fmtValue(m.max)}\n${m.count} points`;
  return h("span", { text: fmtValue(m.last), title: tip });
}

function tagsCell(r) {
  return r.tags.map((tag) =>
    h(
      "span",
      { class: "tag" },
      tag,
      state.deleted ? null : h("button", {
        title: `remove tag ${tag}`, text: "×", "aria-label": `remove tag ${tag}`,
        onclick: async (event) => {
          event.stopPropagation();
          await editTags(r.number, [], [tag]);
          load();
        },
      }),
    ),
  );
}

// -- rendering -------------------------------------------------------------------------------------
function sortState(col) {
  if (!col.sort) return 0;
  if (state.sort === col.sort) return 1;
  if (state.sort === `-${col.sort}`) return -1;
  return 0;
}

function cycleSort(col) {
  const now = sortState(col);
  const ascFirst = ["name", "experiment", "status", "user", "host"].includes(col.sort);
  if (now === 0) state.sort = ascFirst ? col.sort : `-${col.sort}`;
  else if (now === (ascFirst ? 1 : -1)) state.sort = ascFirst ? `-${col.sort}` : col.sort;
  else state.sort = "";
  state.offset = 0;
  pushUrl();
  load();
}

function render() {
  if (!data) return;
  const cols = currentColumns();
  const runs = data.runs;
  const pageNumbers = runs.map((r) => r.number);
  const allChecked = runs.length > 0 && pageNumbers.every((n) => selected.has(n));
  const headCheck = h("input", {
    type: "checkbox", checked: allChecked, "aria-label": "select all runs on this page",
    onchange: (event) => {
      for (const n of pageNumbers) event.target.checked ? selected.add(n) : selected.delete(n);
      render();
    },
  });
  clear(thead).append(
    h(
      "tr",
      {},
      h("th", { class: "check" }, headCheck),
      ...cols.map((col) => {
        const s = sortState(col);
        return h(
          "th",
          {
            class: `${col.class || ""} ${col.sort ? "sortable" : ""}`.trim(),
            title: col.sort ? `sort by ${col.sort}` : col.label,
            dataset: { sort: col.sort || "" },
            onclick: col.sort ? () => cycleSort(col) : null,
          },
          col.group ? h("span", { class: "group", text: col.group }) : null,
          col.label,
          s ? h("span", { class: "arrow", text: s > 0 ? "▲" : "▼" }) : null,
        );
      }),
    ),
  );
  clear(tbody);
  if (!runs.length) {
    const message = state.where ? "No runs match this filter." : state.deleted ? "The trash is empty." : "No runs yet.";
    tbody.append(h("tr", {}, h("td", { class: "empty", colspan: cols.length + 1, text: message })));
  }
  const fragment = document.createDocumentFragment();
  const addRow = (run, depth) => {
    const classes = [selected.has(run.number) ? "selected" : "", depth ? "child" : ""].filter(Boolean).join(" ");
    const tr = h("tr", { class: classes, dataset: { number: run.number, status: run.status, depth } });
    tr.append(
      h("td", { class: "check" }, h("input", {
        type: "checkbox", checked: selected.has(run.number), "aria-label": `select run ${run.number}`,
        onchange: (event) => {
          event.target.checked ? selected.add(run.number) : selected.delete(run.number);
          tr.classList.toggle("selected", event.target.checked);
          renderSelection();
        },
      })),
    );
    for (const col of cols) {
      tr.append(h("td", { class: col.class || "" }, col.id === "name" ? nameCell(run, depth) : col.cell(run)));
    }
    fragment.append(tr);
    const children = nested() ? expanded.get(run.uuid) : null;
    if (!children) return;
    for (const child of children.runs) addRow(child, depth + 1);
    if (children.total > children.runs.length) {
      const link = h("a", {
        href: `/?${new URLSearchParams({ where: `parent == '${run.uuid}'`, sort: "number" })}`,
        text: `${children.total - children.runs.length} more child runs: list them all`,
      });
      fragment.append(h("tr", { class: "child more" }, h("td"),
        h("td", { colspan: cols.length, style: { paddingLeft: `${(depth + 1) * 18}px` } }, link)));
    }
  };
  for (const run of runs) addRow(run, 0);
  tbody.append(fragment);
  title.textContent = state.deleted ? "Trash" : state.experiment || "All runs";
  renderPager();
  renderSelection();
}

function renderPager() {
  const { total } = data;
  const first = total ? state.offset + 1 : 0;
  const last = Math.min(state.offset + state.limit, total);
  const go = (offset) => {
    state.offset = Math.max(0, offset);
    pushUrl();
    load();
    table.parentElement.scrollTop = 0;
  };
  const size = h(
    "select",
    {
      class: "input", "aria-label": "runs per page",
      onchange: (event) => { state.limit = Number(event.target.value); state.offset = 0; pushUrl(); load(); },
    },
    ...PAGE_SIZES.map((n) => h("option", { value: String(n), selected: n === state.limit, text: `${n} / page` })),
  );
  clear(pager).append(
    h("span", { id: "page-range", text: `${first.toLocaleString()}–${last.toLocaleString()} of ${total.toLocaleString()}` }),
    h("button", { class: "button small", text: "‹ Prev", id: "prev-page", disabled: state.offset === 0, onclick: () => go(state.offset - state.limit) }),
    h("button", { class: "button small", text: "Next ›", id: "next-page", disabled: last >= total, onclick: () => go(state.offset + state.limit) }),
    size,
  );
}

function renderSelection() {
  const n = selected.size;
  selectionBar.hidden = n === 0;
  selectionCount.textContent = `${n} selected`;
  selectionBar.querySelector("#delete-selected").textContent = state.deleted ? "Restore" : "Delete";
  compareLink.href = n ? `/compare?runs=${[...selected].join(",")}` : "/compare";
  compareLink.textContent = n ? `Compare (${n})` : "Compare";
}

// -- actions ---------------------------------------------------------------------------------------
function compareSelected() {
  location.href = `/compare?runs=${[...selected].join(",")}`;
}

async function editTags(number, add, remove) {
  try {
    await api(`/runs/${number}/tags`, { method: "POST", body: { add, remove } });
  } catch (error) {
    toast(error.message);
  }
}

async function addTagToSelected() {
  const tag = tagInput.value.trim();
  if (!tag || !selected.size) return;
  await Promise.all([...selected].map((n) => editTags(n, [tag], [])));
  tagInput.value = "";
  toast(`Tagged ${selected.size} run${selected.size > 1 ? "s" : ""} “${tag}”`);
  load();
}

async function setDeleted(numbers, deleted) {
  await Promise.all(
    numbers.map((n) => api(`/runs/${n}${deleted ? "" : "/restore"}`, { method: deleted ? "DELETE" : "POST" })),
  );
}

async function deleteSelected() {
  const numbers = [...selected];
  const deleting = !state.deleted;
  try {
    await setDeleted(numbers, deleting);
  } catch (error) {
    toast(error.message);
    return;
  }
  selected.clear();
  const what = `${numbers.length} run${numbers.length > 1 ? "s" : ""}`;
  toast(deleting ? `Moved ${what} to the trash` : `Restored ${what}`, {
    label: "Undo",
    run: async () => { await setDeleted(numbers, !deleting); load(); loadExperiments(); },
  });
  load();
  loadExperiments();
}

load();
loadExperiments();
showVersion();
