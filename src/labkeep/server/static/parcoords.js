// Parallel coordinates in SVG (no WebGL needed, so they draw in any browser): the compare
// page's runs against a metric, the sweep page's trials against the objective.
import { fmtValue } from "./api.js";

/** A column of values as a dimension: numbers as they are, anything else as categories. */
export function dimensionOf(label, raw) {
  if (raw.every((v) => typeof v === "number" || typeof v === "boolean" || v === undefined)) {
    return { label, values: raw.map((v) => (v === undefined ? null : Number(v))) };
  }
  const categories = [...new Set(raw.map((v) => fmtValue(v ?? "—")))].sort();
  return {
    label,
    values: raw.map((v) => categories.indexOf(fmtValue(v ?? "—"))),
    tickvals: categories.map((_, i) => i),
    ticktext: categories,
  };
}

const SVG = "http://www.w3.org/2000/svg";

function svg(tag, attrs = {}, text) {
  const el = document.createElementNS(SVG, tag);
  for (const [k, v] of Object.entries(attrs)) el.setAttribute(k, String(v));
  if (text !== undefined) el.textContent = text;
  return el;
}

/** One axis per dimension, one line per row (``titles[i]`` its tooltip), coloured from low
 *  (blue) to high (yellow) by ``colourBy``; rows with no colour value are grey. */
export function parallelCoordinates(dimensions, colourBy, titles) {
  const width = 1200;
  const height = 340;
  const top = 40;
  const bottom = 24;
  const left = 70;
  const right = 70;
  const step = (width - left - right) / Math.max(1, dimensions.length - 1);
  const root = svg("svg", { viewBox: `0 0 ${width} ${height}`, width: "100%", role: "img", "aria-label": "parallel coordinates" });
  const scales = dimensions.map((d) => {
    const finite = d.values.filter((v) => v !== null && Number.isFinite(v));
    const lo = finite.length ? Math.min(...finite) : 0;
    const hi = finite.length ? Math.max(...finite) : 1;
    const span = hi - lo || 1;
    return (v) => (v === null || !Number.isFinite(v) ? null : height - bottom - ((v - lo) / span) * (height - top - bottom) * (hi === lo ? 0.5 : 1) - (hi === lo ? (height - top - bottom) / 2 : 0));
  });
  const finiteColour = colourBy.filter((v) => v !== null);
  const cLo = finiteColour.length ? Math.min(...finiteColour) : 0;
  const cHi = finiteColour.length ? Math.max(...finiteColour) : 1;
  titles.forEach((title, i) => {
    const points = dimensions.map((d, j) => [left + j * step, scales[j](d.values[i])]).filter(([, y]) => y !== null);
    const t = colourBy[i] === null ? null : (colourBy[i] - cLo) / (cHi - cLo || 1);
    const colour = t === null ? "#c0c4cc" : `hsl(${230 - t * 180}, 75%, ${45 + t * 10}%)`;
    const line = svg("polyline", { points: points.map((p) => p.join(",")).join(" "), fill: "none", stroke: colour, "stroke-width": 2, opacity: 0.85 });
    line.append(svg("title", {}, title));
    root.append(line);
  });
  dimensions.forEach((d, j) => {
    const x = left + j * step;
    root.append(svg("line", { x1: x, x2: x, y1: top, y2: height - bottom, stroke: "#98a2b3" }));
    root.append(svg("text", { x, y: top - 18, "text-anchor": "middle", "font-size": 12, "font-weight": 600, fill: "#1d2330" }, d.label));
    const finite = d.values.filter((v) => v !== null && Number.isFinite(v));
    if (d.ticktext) {
      d.ticktext.forEach((label, k) => {
        const y = scales[j](k);
        if (y !== null) root.append(svg("text", { x: x + 5, y: y + 4, "font-size": 10, fill: "#667085" }, label));
      });
    } else if (finite.length) {
      for (const v of [Math.min(...finite), Math.max(...finite)]) {
        root.append(svg("text", { x: x + 5, y: scales[j](v) + 4, "font-size": 10, fill: "#667085" }, fmtValue(v)));
      }
    }
  });
  return root;
}
