// The dashboard: fetches /api/v1/metrics/* with the filters in the address bar and draws each
// figure with Chart.js. State for tests and embedding: window.dashboard and body[data-state].
"use strict";

const API = "/api/v1/metrics/";
const WEEKDAYS = ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"];
const HOURS = Array.from({ length: 24 }, (_, hour) => hour);
const COLORS = { accent: "#128c7e", accentSoft: "rgba(18,140,126,0.35)", p90: "#e67e22",
                 read: "#34b7f1", failed: "#c0392b", ink: "#1d2b36" };
// Lower is better for these; higher is better for the rest.
const LOWER_IS_BETTER = new Set(["median_first_response_seconds"]);

window.dashboard = { charts: {}, data: {} };

function filters() {
  const params = new URLSearchParams(window.location.search);
  for (const key of [...params.keys()]) if (!params.get(key)) params.delete(key);
  return params;
}

async function getJSON(path, params) {
  const response = await fetch(`${path}?${params}`);
  const isJSON = (response.headers.get("Content-Type") || "").includes("application/json");
  const body = isJSON ? await response.json() : null;
  if (!response.ok) throw new Error((body && body.reason) || `${path}: HTTP ${response.status}`);
  if (!body) throw new Error(`${path}: the answer is not JSON`);
  return body;
}

function duration(seconds) {
  if (seconds === null || seconds === undefined) return "–";
  const whole = Math.round(seconds);  // round once, then split: never "1m 60s"
  if (whole < 60) return `${whole}s`;
  if (whole < 3600) return `${Math.floor(whole / 60)}m ${whole % 60}s`;
  const minutes = Math.round(whole / 60);
  return `${Math.floor(minutes / 60)}h ${minutes % 60}m`;
}
const percent = (rate) => (rate === null || rate === undefined ? "–" : `${(rate * 100).toFixed(1)}%`);
const count = (n) => (n === null || n === undefined ? "–" : n.toLocaleString("en-US"));
const minutes = (seconds) => (seconds === null ? null : Math.round(seconds / 6) / 10);
const FORMATS = { median_first_response_seconds: duration, responses: count,
                  new_contacts: count, delivery_rate: percent, read_rate: percent };

function drawHeadlines(summary) {
  const previous = summary.previous_period;
  for (const card of document.querySelectorAll(".headline")) {
    const name = card.dataset.figure;
    const figure = summary.figures[name];
    card.querySelector(".value").textContent = FORMATS[name](figure.value);
    const change = card.querySelector(".change");
    change.className = "change";
    const isRate = name.endsWith("_rate");
    // Rates change in percentage points; counts and durations relative to the previous value.
    const delta = isRate && figure.value !== null && figure.previous !== null
      ? (figure.value - figure.previous) * 100
      : figure.change === null ? null : figure.change * 100;
    if (delta === null) {
      change.textContent = figure.previous === null || figure.value === null
        ? `no figure for ${previous.start} – ${previous.end}`
        : `${FORMATS[name](figure.previous)} in the previous period`;
    } else {
      const arrow = delta > 0 ? "▲" : delta < 0 ? "▼" : "=";
      const better = LOWER_IS_BETTER.has(name) ? delta < 0 : delta > 0;
      if (delta !== 0) change.classList.add(better ? "up" : "down");
      const amount = isRate ? `${Math.abs(delta).toFixed(1)} pt` : `${Math.abs(delta).toFixed(1)}%`;
      change.textContent = `${arrow} ${amount} vs previous period`;
    }
    card.dataset.value = figure.value === null ? "" : String(figure.value);
  }
}

function replaceChart(id, config) {
  const existing = window.dashboard.charts[id];
  if (existing) existing.destroy();
  config.options = { responsive: true, maintainAspectRatio: false, animation: false,
                     ...config.options };
  window.dashboard.charts[id] = new Chart(document.getElementById(id), config);
}

function drawResponseTimes(data) {
  replaceChart("response-times", {
    type: "line",
    data: {
      labels: data.days.map((d) => d.activity_date),
      datasets: [
        { label: "Median", data: data.days.map((d) => minutes(d.median_response_seconds)),
          borderColor: COLORS.accent, backgroundColor: COLORS.accent, tension: 0.25 },
        { label: "p90", data: data.days.map((d) => minutes(d.p90_response_seconds)),
          borderColor: COLORS.p90, backgroundColor: COLORS.p90, tension: 0.25 },
      ],
    },
    options: { scales: { y: { beginAtZero: true, title: { display: true, text: "minutes" } } } },
  });
}

function drawContactGrowth(data) {
  replaceChart("contact-growth", {
    data: {
      labels: data.days.map((d) => d.activity_date),
      datasets: [
        { type: "bar", label: "New contacts", data: data.days.map((d) => d.new_contacts),
          backgroundColor: COLORS.accentSoft, yAxisID: "y" },
        { type: "line", label: "All contacts", data: data.days.map((d) => d.cumulative_contacts),
          borderColor: COLORS.ink, backgroundColor: COLORS.ink, yAxisID: "total", pointRadius: 0 },
      ],
    },
    options: { scales: { y: { beginAtZero: true, position: "left" },
                         total: { beginAtZero: true, position: "right",
                                  grid: { drawOnChartArea: false } } } },
  });
}

function drawPeakHours(data) {
  const busiest = Math.max(1, ...data.cells.map((c) => c.messages_received));
  replaceChart("peak-hours", {
    type: "matrix",
    data: {
      datasets: [{
        label: "Inbound messages",
        data: data.cells.map((c) => ({ x: c.hour_of_day, y: c.day_of_week, v: c.messages_received })),
        backgroundColor: (ctx) => {
          const cell = ctx.dataset.data[ctx.dataIndex];
          return `rgba(18,140,126,${cell ? 0.06 + 0.94 * (cell.v / busiest) : 0})`;
        },
        width: ({ chart }) => (chart.chartArea || {}).width / 24 - 1,
        height: ({ chart }) => (chart.chartArea || {}).height / 7 - 1,
      }],
    },
    options: {
      plugins: {
        legend: { display: false },
        tooltip: { callbacks: {
          title: (items) => `${WEEKDAYS[items[0].raw.y - 1]} ${items[0].raw.x}:00`,
          label: (item) => `${count(item.raw.v)} inbound messages`,
        } },
      },
      scales: {
        // Cells are centred on whole hours and weekdays: one tick per cell, labelled.
        x: { type: "linear", min: -0.5, max: 23.5, offset: false, grid: { display: false },
             afterBuildTicks: (scale) => { scale.ticks = HOURS.map((value) => ({ value })); },
             ticks: { autoSkip: true, maxRotation: 0, callback: (v) => `${v}h` } },
        y: { type: "linear", min: 0.5, max: 7.5, reverse: true, offset: false,
             grid: { display: false },
             afterBuildTicks: (scale) => { scale.ticks = [1, 2, 3, 4, 5, 6, 7].map((value) => ({ value })); },
             ticks: { callback: (v) => WEEKDAYS[v - 1] } },
      },
    },
  });
}

function drawDelivery(data) {
  const t = data.totals;
  replaceChart("delivery", {
    type: "bar",
    data: {
      labels: ["Sent", "Delivered", "Read", "Failed"],
      datasets: [{
        label: "Outbound messages",
        data: [t.messages_sent, t.messages_delivered, t.messages_read, t.messages_failed],
        backgroundColor: [COLORS.ink, COLORS.accent, COLORS.read, COLORS.failed],
      }],
    },
    options: {
      indexAxis: "y",
      plugins: { legend: { display: false },
                 subtitle: { display: true,
                             text: `delivered ${percent(t.delivery_rate)} of sent, read ${percent(t.read_rate)} of delivered` } },
      scales: { x: { beginAtZero: true } },
    },
  });
}

function drawAgents(data) {
  const body = document.querySelector("#agents tbody");
  body.replaceChildren(...data.agents.map((agent) => {
    const row = document.createElement("tr");
    const cells = [agent.agent_id, count(agent.responses),
                   count(agent.first_responses), count(agent.conversations_handled),
                   duration(agent.median_response_seconds), duration(agent.p90_response_seconds),
                   count(agent.messages_sent), percent(agent.read_rate)];
    for (const text of cells) {
      const cell = document.createElement("td");
      cell.textContent = text;
      row.append(cell);
    }
    return row;
  }));
}

async function fillBusinessNumbers(selected) {
  const select = document.getElementById("business_number");
  const { business_numbers: numbers } = await getJSON(API + "business-numbers", "");
  const known = numbers.map((n) => n.business_number);
  // A number from the address without inbound traffic stays selectable, so Apply keeps it.
  if (selected && !known.includes(selected)) known.push(selected);
  for (const number of known) select.append(new Option(number, number, false, number === selected));
}

let latestLoad = 0;

async function load() {
  const ticket = ++latestLoad;  // a slower, older answer must not overwrite a newer one
  document.body.dataset.state = "loading";
  const params = filters();
  const names = ["response-times", "contact-growth", "peak-hours", "delivery", "agents"];
  try {
    // The summary settles the period (the latest day with data, by default); every other
    // panel asks for exactly that period, so all show the same days.
    const summary = await getJSON(API + "summary", params);
    const period = new URLSearchParams(params);
    period.set("start", summary.start);
    period.set("end", summary.end);
    const answers = await Promise.all(names.map((name) => getJSON(API + name, period)));
    if (ticket !== latestLoad) return;
    const data = { summary, ...Object.fromEntries(names.map((name, i) => [name, answers[i]])) };
    window.dashboard.data = data;
    document.getElementById("start").value = summary.start;
    document.getElementById("end").value = summary.end;
    document.getElementById("period").textContent =
      `${summary.start} – ${summary.end} (days and hours in ${summary.timezone})` +
      (summary.business_number ? `, business number ${summary.business_number}` : ", all business numbers") +
      `; changes against ${summary.previous_period.start} – ${summary.previous_period.end}`;
    drawHeadlines(summary);
    drawResponseTimes(data["response-times"]);
    drawContactGrowth(data["contact-growth"]);
    drawPeakHours(data["peak-hours"]);
    document.getElementById("peak-hours-zone").textContent = `(${summary.timezone})`;
    drawDelivery(data.delivery);
    drawAgents(data.agents);
    document.getElementById("error").hidden = true;
    document.body.dataset.state = "ready";
  } catch (error) {
    if (ticket !== latestLoad) return;
    const box = document.getElementById("error");
    box.textContent = error.message;
    box.hidden = false;
    document.body.dataset.state = "error";
  }
}

document.addEventListener("DOMContentLoaded", () => {
  const form = document.getElementById("filters");
  const params = filters();
  fillBusinessNumbers(params.get("business_number") || "").catch(() => {});
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    const next = new URLSearchParams(new FormData(form));
    for (const key of [...next.keys()]) if (!next.get(key)) next.delete(key);
    window.history.replaceState(null, "", `?${next}`);
    load();
  });
  load();
});
