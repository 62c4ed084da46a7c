// Weir's benchmark report: one chart per scenario from the JSON lines embedded in the page
// (<script type="application/json" id="results">, written by scripts/bench-report). Works offline,
// from a file, with no inline script.
"use strict";

(function () {
  const SVG = "http://www.w3.org/2000/svg";
  // The variant each scenario's ratios are taken to; otherwise the first variant that is not Weir's.
  const BASELINES = { telemetry_overhead: "weir_no_telemetry" };

  function el(tag, attrs, parent) {
    const e = document.createElementNS(SVG, tag);
    for (const [k, v] of Object.entries(attrs || {})) e.setAttribute(k, String(v));
    if (parent) parent.appendChild(e);
    return e;
  }
  function html(tag, cls, text, parent) {
    const e = document.createElement(tag);
    if (cls) e.className = cls;
    if (text !== undefined && text !== null) e.textContent = text;
    if (parent) parent.appendChild(e);
    return e;
  }
  function si(x) {
    const a = Math.abs(x);
    if (a >= 1e9) return (x / 1e9).toFixed(2) + "G";
    if (a >= 1e6) return (x / 1e6).toFixed(2) + "M";
    if (a >= 1e3) return (x / 1e3).toFixed(2) + "k";
    return x.toFixed(a >= 10 ? 0 : 2);
  }
  function ns(x) {
    if (x < 1e3) return x.toFixed(0) + " ns";
    if (x < 1e6) return (x / 1e3).toFixed(1) + " µs";
    if (x < 1e9) return (x / 1e6).toFixed(2) + " ms";
    return (x / 1e9).toFixed(2) + " s";
  }
  function median(v) {
    const s = [...v].sort((a, b) => a - b);
    const m = Math.floor(s.length / 2);
    return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
  }

  /// What a scenario is judged by: latency (p99, lower is better) where its lines have it, else items/s.
  function metricOf(lines) {
    if (lines.some((l) => typeof l.p99_ns === "number") && lines.every((l) => typeof l.p99_ns === "number"))
      return { key: "p99_ns", label: "p99 latency (lower is better)", fmt: ns, higher: false };
    return { key: "items_per_second", label: "items per second (higher is better)", fmt: si, higher: true };
  }

  function value(line, key) {
    if (key === "items_per_second" && typeof line[key] !== "number" && line.seconds > 0) return line.items / line.seconds;
    return line[key];
  }

  function chart(parent, scenario, lines) {
    const metric = metricOf(lines);
    const variants = [];
    const runs = new Map();
    for (const l of lines) {
      const v = value(l, metric.key);
      if (typeof v !== "number" || !isFinite(v)) continue;
      if (!runs.has(l.variant)) { runs.set(l.variant, []); variants.push(l.variant); }
      runs.get(l.variant).push(v);
    }
    if (!variants.length) return;
    const baseline = variants.includes(BASELINES[scenario]) ? BASELINES[scenario]
      : (variants.find((v) => !v.startsWith("weir")) || variants[0]);
    const stats = variants.map((v) => {
      const r = runs.get(v);
      return { variant: v, median: median(r), min: Math.min(...r), max: Math.max(...r), n: r.length };
    });
    const base = stats.find((s) => s.variant === baseline).median;
    const top = Math.max(...stats.map((s) => s.max)) || 1;

    const box = html("section", "chart", null, parent);
    box.dataset.scenario = scenario;
    html("h2", null, scenario, box);
    html("div", "note", metric.label + " · ratio to " + baseline, box);
    const labelW = 180;
    const plotW = 520;
    const textW = 320;
    const rowH = 30;
    const w = labelW + plotW + textW;
    const h = stats.length * rowH + 28;
    const svg = el("svg", { viewBox: "0 0 " + w + " " + h, width: w, height: h, role: "img",
      "aria-label": scenario + ": " + stats.map((s) => s.variant + " " + metric.fmt(s.median)).join(", ") }, box);
    const x = (v) => labelW + (v / top) * plotW;
    el("line", { class: "axis", x1: labelW, y1: 4, x2: labelW, y2: h - 22 }, svg);
    for (const f of [0.25, 0.5, 0.75, 1]) {
      el("line", { class: "axis", x1: x(top * f), y1: 4, x2: x(top * f), y2: h - 22 }, svg);
      el("text", { class: "muted", x: x(top * f), y: h - 6, "text-anchor": "middle" }, svg).textContent = metric.fmt(top * f);
    }
    stats.forEach((s, i) => {
      const y = 8 + i * rowH;
      const row = el("g", { class: "variant", "data-variant": s.variant }, svg);
      el("text", { x: labelW - 8, y: y + 15, "text-anchor": "end" }, row).textContent = s.variant;
      const cls = "bar-rect" + (s.variant === baseline ? " baseline" : s.variant.startsWith("weir") ? " weir" : "");
      el("rect", { class: cls, x: labelW, y: y + 3, width: Math.max(1, x(s.median) - labelW), height: rowH - 12, rx: 2 }, row);
      if (s.n > 1) {
        el("line", { class: "whisker", x1: x(s.min), y1: y + 9, x2: x(s.max), y2: y + 9 }, row);
        el("line", { class: "whisker", x1: x(s.min), y1: y + 5, x2: x(s.min), y2: y + 13 }, row);
        el("line", { class: "whisker", x1: x(s.max), y1: y + 5, x2: x(s.max), y2: y + 13 }, row);
      }
      const ratio = base > 0 ? s.median / base : NaN;
      const good = metric.higher ? ratio >= 1 : ratio <= 1;
      const t = el("text", { x: labelW + plotW + 10, y: y + 15 }, row);
      t.textContent = metric.fmt(s.median) + (s.n > 1 ? " (" + metric.fmt(s.min) + "–" + metric.fmt(s.max) + ", " + s.n + " runs)" : "");
      const r = el("text", { class: s.variant === baseline ? "muted" : good ? "better" : "worse", x: w - 4, y: y + 15, "text-anchor": "end" }, row);
      r.textContent = s.variant === baseline ? "baseline" : "×" + ratio.toFixed(2);
      r.classList.add("ratio");
    });
  }

  function start() {
    const data = document.getElementById("results");
    const report = document.getElementById("report");
    const lines = data ? JSON.parse(data.textContent) : [];
    const scenarios = [];
    const by = new Map();
    for (const l of lines) {
      if (!l || typeof l.scenario !== "string" || typeof l.variant !== "string") continue;
      if (!by.has(l.scenario)) { by.set(l.scenario, []); scenarios.push(l.scenario); }
      by.get(l.scenario).push(l);
    }
    const summary = document.getElementById("summary");
    const add = (k, v) => {
      const d = html("div", null, null, summary);
      html("dt", null, k, d);
      html("dd", null, v, d);
    };
    add("report", "benchmarks");
    add("scenarios", String(scenarios.length));
    add("result lines", String(lines.length));
    if (!scenarios.length) html("p", "empty", "No results.", report);
    for (const s of scenarios) chart(report, s, by.get(s));
  }

  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", start);
  else start();
})();
