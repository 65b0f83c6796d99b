// A run's models (and the registry's versions of them) and the artifact versions it used
// and produced: two cards of the run page's overview, filled from /runs/N/lineage.
import { api, fmtSize, h, toast } from "./api.js";

/** A table that scrolls sideways inside its card rather than spill out of it. */
function scroller(table) {
  return h("div", { style: { overflowX: "auto" } }, table);
}

function subhead(text) {
  return h("h3", { text, style: { margin: "10px 0 4px" } });
}

function runLinks(numbers) {
  const known = numbers.filter((n) => n !== null);
  if (!known.length) return h("span", { class: "muted", text: "-" });
  return known.flatMap((n, i) => [i ? ", " : null, h("a", { href: `/runs/${n}`, text: String(n) })]);
}

function registeredText(versions) {
  return versions
    .map((v) => `${v.name} v${v.version}${v.aliases.map((a) => ` @${a}`).join("")}`)
    .join(", ");
}

function modelsTable(models) {
  return h(
    "table",
    { class: "grid", id: "models-table" },
    h("thead", {}, h("tr", {}, ["name", "flavour", "size", "framework", "registered"].map((c) => h("th", { text: c })))),
    h(
      "tbody",
      {},
      models.map((m) =>
        h(
          "tr",
          { dataset: { model: m.name } },
          h("td", { class: "mono", text: m.name, title: m.uri }),
          h("td", { text: m.safe ? m.flavour : `${m.flavour} (unsafe to load)` }),
          h("td", { text: fmtSize(m.size) }),
          h("td", { text: m.framework }),
          h("td", { class: "registered", text: registeredText(m.registered) }),
        ),
      ),
    ),
  );
}

function versionsTable(id, rows, otherLabel, otherKey) {
  return h(
    "table",
    { class: "grid", id },
    h("thead", {}, h("tr", {}, h("th", { text: "artifact" }), h("th", { text: "type" }), h("th", { text: otherLabel }))),
    h(
      "tbody",
      {},
      rows.map((r) =>
        h(
          "tr",
          { dataset: { artifact: r.label } },
          h("td", { class: "mono", text: r.label }),
          h("td", { text: r.type }),
          h("td", {}, runLinks(r[otherKey])),
        ),
      ),
    ),
  );
}

/** The models card and the artifact versions card of run ``number``: hidden until the run
 * has something to show in them. */
export function lineageCards(number) {
  const models = h("div", { class: "card", id: "models-card", hidden: true });
  const artifacts = h("div", { class: "card", id: "lineage-card", hidden: true });
  api(`/runs/${number}/lineage`).then(
    (data) => {
      if (data.models.length) {
        models.append(h("h2", { text: "Models" }), scroller(modelsTable(data.models)));
        models.hidden = false;
      }
      if (data.used.length || data.produced.length) {
        artifacts.append(h("h2", { text: "Artifact versions" }));
        if (data.used.length) {
          artifacts.append(subhead("Used"), scroller(versionsTable("used-artifacts", data.used, "produced by run", "produced_by")));
        }
        if (data.produced.length) {
          artifacts.append(subhead("Produced"), scroller(versionsTable("produced-artifacts", data.produced, "used by runs", "used_by")));
        }
        artifacts.hidden = false;
      }
    },
    (error) => toast(error.message),
  );
  return [models, artifacts];
}
