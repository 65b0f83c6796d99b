// Shared by every page: the API client, a DOM builder that only ever sets text, formatters.
// Nothing here (or anywhere in the UI) assigns innerHTML: data becomes text nodes.

export const API = "/api/v1";

export class ApiError extends Error {
  constructor(status, message) {
    super(message);
    this.status = status;
  }
}

/** Call the API; resolve to the parsed JSON, or reject with an ApiError carrying the server's message. */
export async function api(path, { method = "GET", body, signal } = {}) {
  const init = { method, signal, headers: {} };
  if (body !== undefined) {
    init.headers["Content-Type"] = "application/json";
    init.body = JSON.stringify(body);
  }
  const response = await fetch(API + path, init);
  if (response.status === 401) {
    askForToken();
    throw new ApiError(401, "this server needs a token");
  }
  const type = response.headers.get("content-type") || "";
  const data = type.includes("json") ? await response.json() : await response.text();
  if (!response.ok) {
    const message = (data && (data.error || data.detail)) || response.statusText;
    throw new ApiError(response.status, typeof message === "string" ? message : JSON.stringify(message));
  }
  return data;
}

/** Build an element. props: class, text, title, href, dataset, style, on* handlers, other attributes. */
export function h(tag, props = {}, ...children) {
  const el = document.createElement(tag);
  for (const [name, value] of Object.entries(props || {})) {
    if (value === undefined || value === null || value === false) continue;
    if (name === "class") el.className = value;
    else if (name === "text") el.textContent = value;
    else if (name === "dataset") Object.assign(el.dataset, value);
    else if (name === "style") Object.assign(el.style, value);
    else if (name.startsWith("on")) el.addEventListener(name.slice(2), value);
    else if (name in el && typeof value !== "string") el[name] = value;
    else el.setAttribute(name, value === true ? "" : String(value));
  }
  append(el, children);
  return el;
}

function append(el, children) {
  for (const child of children) {
    if (child === undefined || child === null || child === false) continue;
    if (Array.isArray(child)) append(el, child);
    else if (child instanceof Node) el.appendChild(child);
    else el.appendChild(document.createTextNode(String(child)));
  }
}

export function clear(el) {
  el.replaceChildren();
  return el;
}

// -- formatting -------------------------------------------------------------------------------

/** A param, summary or metric value as short text. */
export function fmtValue(value) {
  if (value === null || value === undefined) return "";
  if (typeof value === "number") return fmtNumber(value);
  if (typeof value === "boolean") return value ? "true" : "false";
  if (typeof value === "string") return value;
  return JSON.stringify(value);
}

export function fmtNumber(x) {
  if (typeof x === "string") return x; // "nan", "inf", "-inf" from the server
  if (!Number.isFinite(x)) return String(x);
  if (Number.isInteger(x) && Math.abs(x) < 1e15) return String(x);
  const a = Math.abs(x);
  if (a !== 0 && (a < 1e-3 || a >= 1e6)) return x.toExponential(3).replace(/\.?0+e/, "e");
  return String(Number(x.toPrecision(5)));
}

export function fmtDuration(seconds) {
  if (seconds === null || seconds === undefined) return "";
  if (seconds < 1) return `${Math.round(seconds * 1000)}ms`;
  if (seconds < 60) return `${seconds.toFixed(seconds < 10 ? 1 : 0)}s`;
  const m = Math.floor(seconds / 60);
  if (m < 60) return `${m}m ${Math.floor(seconds % 60)}s`;
  const hrs = Math.floor(m / 60);
  if (hrs < 48) return `${hrs}h ${m % 60}m`;
  return `${Math.floor(hrs / 24)}d ${hrs % 24}h`;
}

export function fmtDate(epoch) {
  if (epoch === null || epoch === undefined) return "";
  const d = new Date(epoch * 1000);
  const pad = (n) => String(n).padStart(2, "0");
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())} ${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}`;
}

export function fmtAgo(epoch) {
  if (epoch === null || epoch === undefined) return "";
  const s = Date.now() / 1000 - epoch;
  if (s < 45) return "just now";
  if (s < 3600) return `${Math.round(s / 60)} min ago`;
  if (s < 86400) return `${Math.round(s / 3600)} h ago`;
  if (s < 86400 * 14) return `${Math.round(s / 86400)} d ago`;
  return fmtDate(epoch).slice(0, 10);
}

export function fmtSize(bytes) {
  if (bytes < 1024) return `${bytes} B`;
  const units = ["KB", "MB", "GB", "TB"];
  let v = bytes;
  let i = -1;
  do {
    v /= 1024;
    i += 1;
  } while (v >= 1024 && i < units.length - 1);
  return `${v.toFixed(v < 10 ? 1 : 0)} ${units[i]}`;
}

export const STATUSES = ["running", "completed", "failed", "interrupted", "killed"];

export function statusBadge(status) {
  return h("span", { class: `status status-${STATUSES.includes(status) ? status : "other"}`, text: status });
}

/** How the query language names a key: params.lr, or params['my key'] when it is not dotted identifiers. */
export function keyRef(prefix, key) {
  const plain = key.split(".").every((part) => /^[A-Za-z_][A-Za-z0-9_]*$/.test(part));
  if (plain) return `${prefix}.${key}`;
  return `${prefix}['${key.replace(/\\/g, "\\\\").replace(/'/g, "\\'")}']`;
}

// -- page chrome ------------------------------------------------------------------------------

/** The top bar, with the page's own link marked. */
export function topbar(active, extra = []) {
  const link = (href, label, name) =>
    h("a", { href, class: active === name ? "nav active" : "nav", text: label });
  return h(
    "header",
    { class: "topbar" },
    h("a", { href: "/", class: "brand" }, h("span", { class: "brand-mark", text: "◆" }), "labkeep"),
    h("nav", {}, link("/", "Runs", "runs"), ...extra),
    h("span", { class: "spacer" }),
    h("span", { class: "version", id: "version" }),
  );
}

export async function showVersion() {
  try {
    const health = await api("/health");
    const el = document.getElementById("version");
    if (el) el.textContent = `v${health.version}`;
  } catch {
    /* the version is decoration */
  }
}

let toastTimer = null;

/** A short message at the bottom of the page, with an optional action button. */
export function toast(message, action) {
  let box = document.getElementById("toast");
  if (!box) {
    box = h("div", { id: "toast", class: "toast", role: "status" });
    document.body.appendChild(box);
  }
  clear(box);
  box.appendChild(h("span", { text: message }));
  if (action) {
    box.appendChild(
      h("button", {
        class: "link",
        text: action.label,
        onclick: () => {
          box.hidden = true;
          action.run();
        },
      }),
    );
  }
  box.hidden = false;
  clearTimeout(toastTimer);
  toastTimer = setTimeout(() => (box.hidden = true), 6000);
}

let tokenAsked = false;

function askForToken() {
  if (tokenAsked) return;
  tokenAsked = true;
  const input = h("input", { type: "password", placeholder: "token", class: "input", autocomplete: "off" });
  const form = h(
    "form",
    {
      class: "token-form",
      onsubmit: (event) => {
        event.preventDefault();
        document.cookie = `labkeep_token=${encodeURIComponent(input.value.trim())}; path=/; SameSite=Strict`;
        location.reload();
      },
    },
    h("p", { text: "This labkeep server needs an access token." }),
    input,
    h("button", { class: "button primary", type: "submit", text: "Sign in" }),
  );
  document.body.appendChild(h("div", { class: "overlay" }, form));
  input.focus();
}

/** Run ``fn`` every ``ms`` while ``active()`` holds, never overlapping, paused in hidden tabs. */
export function poll(fn, ms, active = () => true) {
  let stopped = false;
  let timer = null;
  const tick = async () => {
    if (stopped) return;
    if (!document.hidden && active()) {
      try {
        await fn();
      } catch (error) {
        if (!(error instanceof ApiError)) console.warn(error);
      }
    }
    if (!stopped) timer = setTimeout(tick, ms);
  };
  timer = setTimeout(tick, ms);
  return () => {
    stopped = true;
    clearTimeout(timer);
  };
}

/** A stable colour per run, shared by the compare page's charts and tables. */
export const PALETTE = [
  "#2f6fde", "#e8590c", "#2b9348", "#c92a2a", "#7048e8", "#0c8599",
  "#d6336c", "#5c940d", "#f08c00", "#495057", "#1864ab", "#862e9c",
];

export function runColor(index) {
  return PALETTE[index % PALETTE.length];
}
