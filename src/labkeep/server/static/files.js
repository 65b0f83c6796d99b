// The run page's code snapshot browser (highlighted by Pygments on the server, sent as tokens)
// and its artifact list with previews: images, text, CSV, sandboxed HTML, notebooks.
import { api, API, ApiError, clear, fmtSize, h } from "./api.js";

const PREVIEW_BYTES = 256 * 1024;

// -- code -----------------------------------------------------------------------------------------

/** Tokens ``[[cls, text], ...]`` as spans beside a line-number gutter. */
export function codeBlock(tokens) {
  const pre = h("pre", { class: "code" });
  let lines = 1;
  const fragment = document.createDocumentFragment();
  for (const [cls, text] of tokens) {
    lines += (text.match(/\n/g) || []).length;
    fragment.append(cls ? h("span", { class: `t-${cls}`, text }) : document.createTextNode(text));
  }
  pre.append(fragment);
  const last = tokens.length ? tokens[tokens.length - 1][1] : "";
  if (last.endsWith("\n")) lines -= 1;
  const numbers = Array.from({ length: Math.max(lines, 1) }, (_, i) => i + 1).join("\n");
  return h("div", { class: "code-body" }, h("pre", { class: "gutter", text: numbers }), pre);
}

export async function codePanel(panel, ref) {
  const list = h("nav", { class: "file-list", id: "file-list" });
  const view = h("div", { class: "code-view", id: "code-view" }, h("div", { class: "loading", text: "Pick a file." }));
  clear(panel).append(h("div", { class: "code-browser" }, list, view));
  let files;
  try {
    files = await api(`/runs/${ref}/code`);
  } catch (error) {
    clear(list);
    clear(view).append(h("div", { class: "loading", text: error instanceof ApiError && error.status === 404 ? "This run has no code snapshot." : error.message }));
    return;
  }
  const show = async (link, label, path) => {
    for (const a of list.querySelectorAll("a")) a.classList.toggle("active", a === link);
    clear(view).append(h("div", { class: "loading", text: "Loading…" }));
    try {
      const data = await api(path);
      const head = h("div", { class: "code-head" }, h("span", { class: "mono", text: label }), h("span", { text: data.binary ? "binary file" : data.language || "" }));
      clear(view).append(head, data.binary ? h("div", { class: "loading", text: `Binary file (${fmtSize(data.size)})` }) : codeBlock(data.tokens));
    } catch (error) {
      clear(view).append(h("div", { class: "error-box", text: error.message }));
    }
  };
  const entry = (label, path, cls, extra = "", open = show) => {
    const link = h("a", { href: "#code", class: cls, title: label, dataset: { path: label } }, extra ? h("span", { class: "dir", text: extra }) : null, label.slice(extra.length));
    link.addEventListener("click", (event) => {
      event.preventDefault();
      open(link, label, path);
    });
    return link;
  };
  const showPackages = async (link) => {
    for (const a of list.querySelectorAll("a")) a.classList.toggle("active", a === link);
    try {
      const packages = await api(`/runs/${ref}/packages`);
      const entries = Array.isArray(packages)
        ? packages.map((p) => [p.name ?? String(p), p.version ?? ""])
        : Object.entries(packages).sort(([a], [b]) => a.localeCompare(b));
      const rows = entries.map(([name, version]) => h("tr", {}, h("td", { class: "mono", text: name }), h("td", { class: "mono", text: String(version) })));
      clear(view).append(
        h("div", { class: "code-head" }, h("span", { text: "installed packages" }), h("span", { text: `${entries.length}` })),
        h("table", { class: "kv wide", style: { margin: "8px 12px", width: "auto" } }, h("tbody", {}, rows)),
      );
    } catch (error) {
      clear(view).append(h("div", { class: "error-box", text: error.message }));
    }
  };
  clear(list).append(
    entry("uncommitted changes (git diff)", `/runs/${ref}/diff`, "special"),
    entry("installed packages", "", "special", "", (link) => showPackages(link)),
    h("hr"),
  );
  for (const file of files) {
    const slash = file.path.lastIndexOf("/");
    const dir = slash >= 0 ? file.path.slice(0, slash + 1) : "";
    list.append(entry(file.path, `/runs/${ref}/code/${file.path.split("/").map(encodeURIComponent).join("/")}?format=tokens`, "", dir));
  }
  if (!files.length) list.append(h("div", { class: "loading", text: "No code files." }));
  const entryPoint = files.find((f) => f.path.endsWith(".py")) || files[0];
  if (entryPoint) list.querySelector(`a[data-path="${CSS.escape(entryPoint.path)}"]`)?.click();
}

// -- artifacts ----------------------------------------------------------------------------------------

function artifactUrl(ref, path, extra = "") {
  return `${API}/runs/${ref}/artifacts/${path.split("/").map(encodeURIComponent).join("/")}${extra}`;
}

async function fetchHead(url) {
  const response = await fetch(url, { headers: { Range: `bytes=0-${PREVIEW_BYTES - 1}` } });
  if (!response.ok) throw new ApiError(response.status, `cannot load the artifact (${response.status})`);
  return response.text();
}

/** A small CSV parser: quoted fields, doubled quotes, commas or tabs. */
export function parseCsv(text, delimiter = ",") {
  const rows = [];
  let row = [];
  let field = "";
  let quoted = false;
  for (let i = 0; i < text.length; i += 1) {
    const c = text[i];
    if (quoted) {
      if (c === '"' && text[i + 1] === '"') { field += '"'; i += 1; }
      else if (c === '"') quoted = false;
      else field += c;
    } else if (c === '"') quoted = true;
    else if (c === delimiter) { row.push(field); field = ""; }
    else if (c === "\n" || c === "\r") {
      if (c === "\r" && text[i + 1] === "\n") i += 1;
      row.push(field);
      rows.push(row);
      row = [];
      field = "";
    } else field += c;
  }
  if (field || row.length) { row.push(field); rows.push(row); }
  return rows;
}

async function preview(box, ref, artifact, all) {
  const url = artifactUrl(ref, artifact.path);
  const head = h(
    "div",
    { class: "preview-head" },
    h("span", { class: "mono", text: artifact.path }),
    h("span", {}, `${fmtSize(artifact.size)} · `, h("a", { href: artifactUrl(ref, artifact.path, "?download=true"), text: "download" })),
  );
  clear(box).append(head);
  const kind = artifact.preview;
  try {
    if (kind === "image") {
      box.append(h("img", { src: url, alt: artifact.path }));
    } else if (kind === "html") {
      box.append(h("iframe", { src: url, sandbox: "allow-scripts", title: artifact.path, referrerpolicy: "no-referrer" }));
    } else if (kind === "notebook") {
      const stem = artifact.path.replace(/\.ipynb$/i, "");
      const exported = all.find((a) => a.path === `${stem}.html`);
      const src = exported ? artifactUrl(ref, exported.path) : artifactUrl(ref, artifact.path, "?render=html");
      const waiting = h("div", { class: "loading", text: exported ? "Loading…" : "Rendering the notebook…" });
      const frame = h("iframe", { src, sandbox: exported ? "allow-scripts" : "", title: artifact.path, hidden: true });
      frame.addEventListener("load", () => { waiting.remove(); frame.hidden = false; });
      box.append(waiting, frame);
    } else if (kind === "csv") {
      const text = await fetchHead(url);
      const rows = parseCsv(text, artifact.path.toLowerCase().endsWith(".tsv") ? "\t" : ",");
      if (artifact.size > PREVIEW_BYTES) rows.pop(); // the last row may be cut off
      const [header = [], ...body] = rows;
      const shown = body.slice(0, 500);
      box.append(
        h("div", { style: { overflow: "auto" } }, h(
          "table",
          { class: "grid csv" },
          h("thead", {}, h("tr", {}, header.map((cell) => h("th", { text: cell })))),
          h("tbody", {}, shown.map((r) => h("tr", {}, r.map((cell) => h("td", { text: cell, title: cell }))))),
        )),
      );
      if (body.length > shown.length || artifact.size > PREVIEW_BYTES) {
        box.append(h("p", { class: "muted", style: { padding: "0 12px" }, text: "Showing the first rows; download for the rest." }));
      }
    } else if (kind === "text") {
      const text = await fetchHead(url);
      box.append(h("pre", { text }));
      if (artifact.size > PREVIEW_BYTES) box.append(h("p", { class: "muted", style: { padding: "0 12px" }, text: `Showing the first ${fmtSize(PREVIEW_BYTES)}.` }));
    } else {
      box.append(h("div", { class: "loading", text: "No preview for this kind of file." }));
    }
  } catch (error) {
    box.append(h("div", { class: "error-box", text: error.message }));
  }
}

export async function artifactsPanel(panel, ref) {
  const list = h("nav", { class: "file-list artifact-list", id: "artifact-list" });
  const box = h("div", { class: "preview", id: "artifact-preview" }, h("div", { class: "loading", text: "Pick an artifact." }));
  clear(panel).append(h("div", { class: "artifacts" }, list, box));
  let artifacts;
  try {
    artifacts = await api(`/runs/${ref}/artifacts`);
  } catch (error) {
    clear(box).append(h("div", { class: "error-box", text: error.message }));
    return;
  }
  if (!artifacts.length) {
    clear(box).append(h("div", { class: "loading", text: "This run has no artifacts." }));
    return;
  }
  for (const artifact of artifacts) {
    const link = h(
      "a",
      { href: "#artifacts", title: artifact.path, dataset: { path: artifact.path } },
      h("span", { text: artifact.path }),
      // A model's metadata file (run.log_model) stands for the model: labkeep.load_model reads it.
      artifact.kind === "model" && artifact.path.endsWith("/labkeep_model.json")
        ? h("span", { class: "tag", text: "model", title: "load with labkeep.load_model" })
        : null,
      h("span", { class: "muted", text: fmtSize(artifact.size) }),
    );
    link.addEventListener("click", (event) => {
      event.preventDefault();
      for (const a of list.querySelectorAll("a")) a.classList.toggle("active", a === link);
      preview(box, ref, artifact, artifacts);
    });
    list.append(link);
  }
  list.querySelector("a").click();
}
