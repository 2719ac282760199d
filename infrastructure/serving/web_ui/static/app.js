// The web UI: every action is a call to the service's own JSON APIs (predict, feedback,
// jobs/*, stats, metadata, models) with the API key typed in the header, so the UI goes
// through the same validation, limits, auth and metrics as any other client.
"use strict";

// The service may sit under a path prefix (an ingress): its APIs are next to /ui.
const BASE = location.pathname.replace(/\/ui(\/.*)?$/, "");
const REFRESH_MS = 2000;
const HISTORY_POINTS = 300; // 10 minutes of 2 s samples
const JOB_POLL_MS = 1000;
const KEY_STORAGE = "bento-mlops-api-key";
const JOBS_STORAGE = "bento-mlops-jobs";

const $ = (id) => document.getElementById(id);
const el = (tag, attrs = {}, ...children) => {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs)) {
    if (name === "class") node.className = value;
    else if (name === "text") node.textContent = value;
    else node.setAttribute(name, value);
  }
  for (const child of children) node.append(child);
  return node;
};
const fmt = (value, digits = 3) =>
  value === null || value === undefined || Number.isNaN(value) ? "–" : Number(value).toFixed(digits);
const pairs = (object, digits) =>
  Object.entries(object || {})
    .map(([key, value]) => `${key} ${typeof value === "number" ? fmt(value, digits) : value}`)
    .join(", ");
// The registry keeps every metric a run logged; the tables show the headline ones.
const MAIN_METRICS = ["accuracy", "macro_f1", "eval_loss", "fit_seconds", "train_seconds"];
const main = (metrics) => {
  const picked = Object.fromEntries(MAIN_METRICS.filter((k) => k in (metrics || {})).map((k) => [k, metrics[k]]));
  return Object.keys(picked).length ? picked : Object.fromEntries(Object.entries(metrics || {}).slice(0, 4));
};
const when = (ms) => (ms ? new Date(ms).toLocaleString() : "–");

class ApiError extends Error {
  constructor(status, message) {
    super(message);
    this.status = status;
  }
}

function headers() {
  const key = $("api-key").value.trim();
  return key ? { Authorization: `Bearer ${key}` } : {};
}

// The service's error body: {"error": "...", "detail": [{"loc": [...], "msg": "..."}]}.
async function errorFrom(response) {
  let message = response.statusText;
  try {
    const body = await response.json();
    const details = (body.detail || [])
      .map((d) => {
        const field = (d.loc || []).filter((part) => part !== "body").join(".");
        return field ? `${field}: ${d.msg}` : d.msg;
      })
      .filter(Boolean);
    message = details.length ? details.join("\n") : body.error || message;
  } catch (_) {
    /* not JSON: keep the status text */
  }
  if (response.status === 401 || response.status === 403) {
    message += "\n(enter an API key with the right role in the header: mlops keys create NAME --role predict)";
  }
  return new ApiError(response.status, `${response.status}: ${message}`);
}

async function call(endpoint, body, raw = false) {
  const init = { method: "POST", headers: headers() };
  if (body instanceof FormData) init.body = body;
  else {
    init.headers["Content-Type"] = "application/json";
    init.body = JSON.stringify(body ?? {});
  }
  const response = await fetch(`${BASE}/${endpoint}`, init);
  if (!response.ok) throw await errorFrom(response);
  return raw ? response : response.json();
}

function show(box, error) {
  box.hidden = !error;
  box.textContent = error ? error.message || String(error) : "";
}

// -- tabs ----------------------------------------------------------------------------
const TABS = ["predict", "batch", "monitor", "models"];
function route() {
  const tab = TABS.includes(location.hash.slice(1)) ? location.hash.slice(1) : "predict";
  for (const name of TABS) $(name).hidden = name !== tab;
  for (const link of document.querySelectorAll("#tabs a")) {
    link.classList.toggle("active", link.dataset.tab === tab);
  }
  if (tab === "monitor") monitor.draw();
  if (tab === "models") loadModels();
}

// -- metadata -------------------------------------------------------------------------
let meta = null;
const isText = () => meta && !Array.isArray(meta.features);

async function loadMetadata() {
  try {
    meta = await call("metadata");
    show($("banner"), null);
  } catch (error) {
    show($("banner"), error);
    return;
  }
  $("model-name").textContent = `${meta.model_name} · ${isText() ? "text" : "tabular"} · champion v${meta.model_version ?? meta.version ?? ""}`;
  buildForm();
  $("text-column-label").hidden = !isText();
}

// -- predict --------------------------------------------------------------------------
function buildForm() {
  const fields = $("predict-fields");
  fields.replaceChildren();
  if (isText()) {
    $("predict-help").textContent = `Up to ${meta.serving?.max_text_chars ?? "?"} characters; the model reads the first ${meta.max_length} tokens.`;
    fields.style.display = "block";
    fields.append(el("label", { for: "field-text" }, "text"),
      el("textarea", { id: "field-text", name: "text", placeholder: "a sentence to classify" }));
    return;
  }
  $("predict-help").textContent = "Leave a field empty to send it as missing (null). Categories the model never saw are answered and named.";
  for (const feature of meta.features) {
    const id = `field-${feature.name}`;
    const input = el("input", { id, name: feature.name, autocomplete: "off" });
    if (feature.kind === "numeric") {
      // Text, not type=number: the browser would turn "abc" into an empty value, and the
      // service's own message for a bad number is the one to show.
      input.setAttribute("inputmode", "decimal");
      input.placeholder = "number";
    } else {
      const list = el("datalist", { id: `${id}-categories` });
      for (const category of feature.categories) list.append(el("option", { value: category }));
      input.setAttribute("list", list.id);
      input.placeholder = feature.categories.slice(0, 3).join(", ") + (feature.category_count > 3 ? ", …" : "");
      fields.append(list);
    }
    fields.append(el("label", { for: id }, feature.name, el("span", { class: "kind", text: feature.kind }), input));
  }
}

function requestBody() {
  if (isText()) return { text: $("field-text").value };
  const body = {};
  for (const feature of meta.features) {
    const value = $(`field-${feature.name}`).value.trim();
    if (value === "") body[feature.name] = null;
    else if (feature.kind === "numeric" && value !== "" && Number.isFinite(Number(value))) body[feature.name] = Number(value);
    else body[feature.name] = value;
  }
  return body;
}

let lastPrediction = null;
async function predict(event) {
  event.preventDefault();
  if (!meta) await loadMetadata();
  if (!meta) return;
  const button = $("predict-submit");
  button.disabled = true;
  try {
    const answer = await call("predict", requestBody());
    show($("predict-error"), null);
    renderPrediction(answer.predictions[0]);
  } catch (error) {
    show($("predict-error"), error);
    $("predict-answer").hidden = true;
  } finally {
    button.disabled = false;
  }
}

function renderPrediction(prediction) {
  lastPrediction = prediction;
  $("answer-label").textContent = prediction.label;
  $("answer-probability").textContent = `(probability ${fmt(prediction.probability)})`;
  const bars = $("answer-bars");
  bars.replaceChildren();
  const sorted = Object.entries(prediction.probabilities).sort((a, b) => b[1] - a[1]);
  for (const [label, probability] of sorted) {
    const fill = el("div", { class: "fill" });
    fill.style.width = `${(probability * 100).toFixed(1)}%`;
    bars.append(el("div", { class: `bar${label === prediction.label ? " top" : ""}`, "data-class": label },
      el("span", { text: label }), el("div", { class: "track" }, fill), el("span", { class: "value", text: fmt(probability) })));
  }
  const details = { "model version": prediction.model_version, variant: prediction.variant, "request id": prediction.request_id };
  const unknown = prediction.unknown_categories || {};
  if (Object.keys(unknown).length) details["unknown categories"] = pairs(unknown);
  $("answer-meta").replaceChildren(...Object.entries(details).flatMap(([k, v]) => [el("dt", { text: k }), el("dd", { text: v })]));
  const buttons = $("feedback-buttons");
  buttons.replaceChildren(...(meta.classes || []).map((label) => {
    const button = el("button", { type: "button", class: "plain", text: label });
    button.addEventListener("click", () => sendFeedback(label));
    return button;
  }));
  $("feedback-result").textContent = "";
  $("predict-answer").hidden = false;
}

async function sendFeedback(label) {
  try {
    const outcome = await call("feedback", { request_id: lastPrediction.request_id, label });
    $("feedback-result").textContent = `recorded (${outcome.correct ? "correct" : "wrong"}); rolling accuracy of ${outcome.variant} v${outcome.model_version}: ${fmt(outcome.rolling_accuracy)} over ${outcome.labelled} labels`;
  } catch (error) {
    $("feedback-result").textContent = error.message;
  }
}

// -- batch jobs -----------------------------------------------------------------------
const FINISHED = new Set(["completed", "failed"]);
const jobs = new Map(JSON.parse(sessionStorage.getItem(JOBS_STORAGE) || "[]"));
function saveJobs() {
  sessionStorage.setItem(JOBS_STORAGE, JSON.stringify([...jobs.entries()].slice(-20)));
}

async function submitJob(event) {
  event.preventDefault();
  const file = $("batch-file").files[0];
  if (!file) {
    show($("batch-error"), new Error("choose a file first"));
    return;
  }
  const form = new FormData();
  form.append("file", file, file.name);
  if (isText()) form.append("text_column", $("text-column").value);
  $("batch-submit").disabled = true;
  try {
    const job = await call("jobs/submit", form);
    show($("batch-error"), null);
    jobs.set(job.job_id, job);
    saveJobs();
    renderJobs();
    pollJobs();
  } catch (error) {
    show($("batch-error"), error);
  } finally {
    $("batch-submit").disabled = false;
  }
}

let polling = false;
async function pollJobs() {
  if (polling) return;
  polling = true;
  try {
    while ([...jobs.values()].some((job) => !FINISHED.has(job.status))) {
      for (const job of jobs.values()) {
        if (FINISHED.has(job.status)) continue;
        try {
          jobs.set(job.job_id, await call("jobs/status", { job_id: job.job_id }));
        } catch (error) {
          if (error.status === 404) jobs.delete(job.job_id);
        }
      }
      saveJobs();
      renderJobs();
      await new Promise((resolve) => setTimeout(resolve, JOB_POLL_MS));
    }
  } finally {
    polling = false;
  }
}

async function download(job, rejects) {
  try {
    const response = await call(rejects ? "jobs/rejects" : "jobs/result", { job_id: job.job_id }, true);
    const blob = await response.blob();
    const link = el("a", { href: URL.createObjectURL(blob), download: `${rejects ? "rejects" : "scored"}-${job.input_name}` });
    document.body.append(link);
    link.click();
    link.remove();
    setTimeout(() => URL.revokeObjectURL(link.href), 60_000);
  } catch (error) {
    show($("batch-error"), error);
  }
}

function renderJobs() {
  const rows = [...jobs.values()].reverse().map((job) => {
    const progress = el("progress", { max: "1" });
    if (job.status === "completed") progress.value = 1;
    else if (job.rows_total) progress.value = Math.min(1, job.rows_done / job.rows_total);
    else progress.removeAttribute("value");
    const links = el("td");
    if (job.status === "completed") {
      for (const rejects of [false, true]) {
        const button = el("button", { type: "button", class: "plain", "data-download": rejects ? "rejects" : "result", text: rejects ? `rejects (${job.rejected})` : "scored file" });
        button.addEventListener("click", () => download(job, rejects));
        links.append(button);
      }
    } else if (job.error) links.append(job.error);
    return el("tr", { "data-job": job.job_id, "data-status": job.status },
      el("td", { text: job.input_name }), el("td", { class: "status", text: job.status }), el("td", {}, progress),
      el("td", { class: "num", text: String(job.scored) }), el("td", { class: "num", text: String(job.rejected) }),
      el("td", { text: job.model_version ?? "–" }), links);
  });
  document.querySelector("#jobs tbody").replaceChildren(...rows);
}

// -- monitor --------------------------------------------------------------------------
const PALETTE = ["#1769aa", "#d9480f", "#2b8a3e", "#862e9c", "#e67700", "#0b7285", "#c2255c", "#5c940d"];

class Monitor {
  constructor() {
    this.times = [];
    this.samples = []; // per time: {key: variant entry}
    this.previous = new Map();
    this.charts = new Map();
    this.paused = false;
    this.last = null;
  }

  add(stats) {
    const now = Date.now() / 1000;
    const sample = {};
    for (const entry of stats.variants) {
      const key = `${entry.variant} v${entry.model_version}`;
      const s = entry.stats;
      const errors = Object.values(s.errors || {}).reduce((a, b) => a + b, 0);
      const before = this.previous.get(key);
      const dt = before ? now - before.at : null;
      sample[key] = {
        rate: before && dt > 0 ? Math.max(0, (s.predictions - before.predictions) / dt) : null,
        errors: before && dt > 0 ? Math.max(0, (errors - before.errors) / dt) : null,
        p50: s.latency.p50_ms, p95: s.latency.p95_ms, p99: s.latency.p99_ms,
        confidence: s.mean_confidence, accuracy: s.rolling_accuracy,
        drifted: s.drift.window ? s.drift.drifted_share : null,
      };
      this.previous.set(key, { at: now, predictions: s.predictions, errors });
    }
    this.times.push(now);
    this.samples.push(sample);
    if (this.times.length > HISTORY_POINTS) {
      this.times.shift();
      this.samples.shift();
    }
    this.last = stats;
  }

  keys() {
    const keys = new Set();
    for (const sample of this.samples) for (const key of Object.keys(sample)) keys.add(key);
    return [...keys];
  }

  series(field) {
    return this.keys().map((key) => this.samples.map((sample) => sample[key]?.[field] ?? null));
  }

  chart(id, specs, unit = false) {
    // specs: [{label, values, dash}], one line each; the chart is rebuilt when its lines
    // change. unit: a share or a probability, drawn on a fixed 0..1 axis.
    const box = $(id);
    if (box.clientWidth === 0) return;
    const signature = specs.map((s) => s.label).join("|");
    let entry = this.charts.get(id);
    if (!entry || entry.signature !== signature || entry.width !== box.clientWidth) {
      if (entry) entry.plot.destroy();
      box.replaceChildren();
      const series = [{}, ...specs.map((s, i) => ({
        label: s.label, stroke: PALETTE[s.color ?? i % PALETTE.length], width: 2, dash: s.dash, spanGaps: true,
      }))];
      const scales = { x: { time: true } };
      if (unit) scales.y = { range: [0, 1] };
      const plot = new uPlot({ width: box.clientWidth, height: 200, series, axes: [{}, { size: 60 }], scales },
        [this.times, ...specs.map((s) => s.values)], box);
      entry = { plot, signature, width: box.clientWidth };
      this.charts.set(id, entry);
    } else {
      entry.plot.setData([this.times, ...specs.map((s) => s.values)]);
    }
  }

  draw() {
    if (!this.last || $("monitor").hidden) return;
    const keys = this.keys();
    const simple = (field) => keys.map((key, i) => ({ label: key, values: this.series(field)[i], color: i }));
    this.chart("chart-rate", simple("rate"));
    this.chart("chart-errors", simple("errors"));
    this.chart("chart-confidence", simple("confidence"), true);
    this.chart("chart-accuracy", simple("accuracy"), true);
    this.chart("chart-drift", simple("drifted"), true);
    const latency = [];
    keys.forEach((key, i) => {
      for (const [field, dash] of [["p50", [2, 3]], ["p95", [8, 4]], ["p99", undefined]]) {
        latency.push({ label: `${key} ${field}`, values: this.samples.map((s) => s[key]?.[field] ?? null), dash, color: i });
      }
    });
    this.chart("chart-latency", latency);
    this.summary();
    this.driftTable();
    $("monitor-updated").textContent = `updated ${new Date().toLocaleTimeString()}`;
  }

  summary() {
    const stats = this.last;
    const latest = this.samples[this.samples.length - 1] || {};
    const cards = [];
    const card = (label, value) => el("div", { class: "card" }, el("div", { class: "label", text: label }), el("div", { class: "value", text: value }));
    for (const entry of stats.variants) {
      const key = `${entry.variant} v${entry.model_version}`;
      const s = entry.stats;
      cards.push(card(`${key}: predictions`, `${s.predictions} (${fmt(latest[key]?.rate, 1)}/s)`));
      cards.push(card(`${key}: p99 / accuracy`, `${fmt(s.latency.p99_ms, 1)} ms / ${fmt(s.rolling_accuracy)} (${s.labelled} labels)`));
    }
    cards.push(card("challenger share", `${fmt(stats.traffic.challenger_weight, 1)}%`));
    if (stats.shadow.compared) cards.push(card("shadow agreement", `${fmt(stats.shadow.agreement)} of ${stats.shadow.compared}`));
    cards.push(card("swaps / reload failures", `${stats.swaps} / ${stats.reload_failures}`));
    $("monitor-summary").replaceChildren(...cards);
  }

  driftTable() {
    const variants = this.last.variants;
    const features = [...new Set(variants.flatMap((v) => v.stats.drift.features.map((f) => f.feature)))];
    const head = el("tr", {}, el("th", { text: "feature" }), ...variants.map((v) => el("th", { text: `${v.variant} v${v.model_version} (window ${v.stats.drift.window})` })));
    const rows = features.map((name) => el("tr", {}, el("td", { text: name }), ...variants.map((v) => {
      const drift = v.stats.drift.features.find((f) => f.feature === name);
      if (!drift) return el("td", { text: "–" });
      return el("td", { class: drift.drifted ? "drifted" : "", text: `${drift.method} ${fmt(drift.statistic, 4)}${drift.drifted ? " drifted" : ""}` });
    })));
    if (!features.length) rows.push(el("tr", {}, el("td", { colspan: String(variants.length + 1), class: "muted", text: "no drift window yet (it needs served rows)" })));
    document.querySelector("#drift-table thead").replaceChildren(head);
    document.querySelector("#drift-table tbody").replaceChildren(...rows);
  }

  async tick() {
    if (!this.paused) {
      try {
        this.add(await call("stats"));
        this.draw();
        show($("banner"), null);
      } catch (error) {
        show($("banner"), error);
      }
    }
    setTimeout(() => this.tick(), REFRESH_MS);
  }
}
const monitor = new Monitor();

// -- models ---------------------------------------------------------------------------
async function loadModels() {
  if (!meta) await loadMetadata();
  if (!meta) return;
  const served = Object.entries(meta.variants || {}).map(([variant, v]) =>
    el("tr", { "data-variant": variant }, el("td", { text: variant }), el("td", { text: v.model_version }), el("td", { text: v.bentoml_tag }),
      el("td", { text: pairs(main(v.metrics)) }), el("td", { text: v.gate ? pairs(v.gate) : "–" })));
  document.querySelector("#served tbody").replaceChildren(...served);
  let overview;
  try {
    overview = await call("models");
  } catch (error) {
    show($("registry-error"), error);
    return;
  }
  show($("registry-error"), overview.error ? new Error(`registry: ${overview.error}`) : null);
  const versions = [...overview.versions].reverse().map((v) =>
    el("tr", { "data-version": v.version }, el("td", { text: v.version }), el("td", { text: v.aliases.join(", ") }),
      el("td", { text: pairs(main(v.metrics)) }), el("td", { text: v.tags["gate.passed"] ?? "–" }),
      el("td", { text: v.tags.candidate ?? "–" }), el("td", { text: when(v.created_at_ms) })));
  document.querySelector("#versions tbody").replaceChildren(...versions);
  const runs = overview.runs.map((r) =>
    el("tr", {}, el("td", { text: r.parent_run_id ? `↳ ${r.name}` : r.name }), el("td", { text: r.status }),
      el("td", { text: when(r.started_at_ms) }), el("td", { text: r.duration_s === null ? "–" : `${fmt(r.duration_s, 1)} s` }),
      el("td", { text: pairs(r.params) }), el("td", { text: pairs(main(r.metrics)) })));
  document.querySelector("#runs tbody").replaceChildren(...runs);
}

// -- start ----------------------------------------------------------------------------
$("api-key").value = sessionStorage.getItem(KEY_STORAGE) || "";
$("api-key").addEventListener("change", () => {
  sessionStorage.setItem(KEY_STORAGE, $("api-key").value.trim());
  loadMetadata();
});
$("predict-form").addEventListener("submit", predict);
$("batch-form").addEventListener("submit", submitJob);
$("monitor-pause").addEventListener("click", () => {
  monitor.paused = !monitor.paused;
  $("monitor-pause").textContent = monitor.paused ? "Resume" : "Pause";
});
$("refresh-s").textContent = String(REFRESH_MS / 1000);
window.addEventListener("hashchange", route);
window.addEventListener("resize", () => monitor.draw());
renderJobs();
pollJobs();
loadMetadata().then(route);
monitor.tick();
