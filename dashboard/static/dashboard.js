// The dashboard: fetches /api/v1/metrics/* with the filters in the address bar and draws each
// figure with Chart.js, then fetches them again every body[data-refresh-seconds] (as often as
// the transform builds the marts), redrawing in place. It says how long ago the marts were
// built, and shows a banner when that is more than body[data-stale-after-intervals] intervals.
// State for tests and embedding: window.dashboard and body[data-state], body[data-stale].
"use strict";

const API = "/api/v1/metrics/";
const WEEKDAYS = ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"];
const HOURS = Array.from({ length: 24 }, (_, hour) => hour);
const COLORS = { accent: "#128c7e", accentSoft: "rgba(18,140,126,0.35)", p90: "#e67e22",
                 read: "#34b7f1", failed: "#c0392b", ink: "#1d2b36" };
// Lower is better for these; higher is better for the rest.
const LOWER_IS_BETTER = new Set(["median_first_response_seconds"]);

// Human steps for a duration axis: 1s 5s 15s 30s 1m 5m 15m 30m 1h 2h 4h 8h 1d 2d 7d.
const DURATION_TICKS = [1, 5, 15, 30, 60, 300, 900, 1800, 3600, 7200, 14400, 28800, 86400,
                        172800, 604800];

// freshness: the newest passed build (built_at) and the newest event it read (as_of), as the
// API said; skewMs: the server's clock minus this one's, so ages do not depend on the browser's.
// tables: the rows of each sortable table, as the API gave them; sort: its order, by table id.
window.dashboard = { charts: {}, data: {}, loads: 0, freshness: null, skewMs: 0,
                     tables: {}, sort: {} };

function filters() {
  const params = new URLSearchParams(window.location.search);
  for (const key of [...params.keys()]) if (!params.get(key)) params.delete(key);
  return params;
}

async function getJSON(path, params) {
  const response = await fetch(`${path}?${params}`);
  const serverTime = Date.parse(response.headers.get("Date") || "");
  // The header counts whole seconds: half a second is its mean loss.
  if (!Number.isNaN(serverTime)) window.dashboard.skewMs = serverTime + 500 - Date.now();
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
const shortDuration = (seconds) =>
  seconds < 60 ? `${seconds}s` : seconds < 3600 ? `${seconds / 60}m`
    : seconds < 86400 ? `${seconds / 3600}h` : `${seconds / 86400}d`;
const percent = (rate) => (rate === null || rate === undefined ? "–" : `${(rate * 100).toFixed(1)}%`);
const count = (n) => (n === null || n === undefined ? "–" : n.toLocaleString("en-US"));
// A logarithmic axis has no 0: an instant answer is drawn at one second (its tooltip says 0s).
const onLogAxis = (seconds) => (seconds === null ? null : Math.max(seconds, 1));
const asPercent = (rate) => (rate === null ? null : rate * 100);
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

// Draws a chart, or redraws the one already there in place: a refresh swaps its data and
// options and updates it, with no new canvas (no flicker) and nothing left to destroy.
function drawChart(id, config) {
  const options = { responsive: true, maintainAspectRatio: false, animation: false,
                    ...config.options };
  const existing = window.dashboard.charts[id];
  if (existing && existing.config.type === config.type) {
    existing.data = config.data;
    existing.options = options;
    existing.update("none");
    return;
  }
  if (existing) existing.destroy();
  window.dashboard.charts[id] = new Chart(document.getElementById(id), { ...config, options });
}

// A line chart's data: one line per [label, key, color], a point per day (`value` of the day's
// figure); a day without a figure (null) is a gap, never joined across.
function dailyLines(days, value, lines) {
  return {
    labels: days.map((d) => d.activity_date),
    datasets: lines.map(([label, key, color]) => ({
      label, key, data: days.map((d) => value(d[key])),
      borderColor: color, backgroundColor: color, spanGaps: false,
      cubicInterpolationMode: "monotone",  // curves that never overshoot a day's figure
    })),
  };
}

// Median and p90 on one logarithmic axis. p90 is often hours where the median is minutes: on a
// linear axis the median then lies flat at zero. On a log axis equal ratios look equal, so a
// median that doubles reads as clearly as a p90 that doubles, and both stay on one scale, p90
// always above the median (two linear axes would let the lines cross and invite comparing
// heights that mean different things). Days without responses are gaps, never joined.
function drawResponseTimes(data) {
  drawChart("response-times", {
    type: "line",
    data: dailyLines(data.days, onLogAxis, [["Median", "median_response_seconds", COLORS.accent],
                                            ["p90", "p90_response_seconds", COLORS.p90]]),
    options: {
      plugins: { tooltip: { callbacks: {
        label: (item) => `${item.dataset.label}: ${duration(data.days[item.dataIndex][item.dataset.key])}`,
      } } },
      scales: { y: {
        type: "logarithmic",
        title: { display: true, text: "time to respond (log scale)" },
        afterBuildTicks: (scale) => {
          const human = DURATION_TICKS.filter((v) => v >= scale.min && v <= scale.max);
          if (human.length >= 2) scale.ticks = human.map((value) => ({ value }));
        },
        ticks: { callback: (v) => (DURATION_TICKS.includes(v) ? shortDuration(v) : duration(v)) },
      } },
    },
  });
}

function drawContactGrowth(data) {
  drawChart("contact-growth", {
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
  drawChart("peak-hours", {
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
  drawChart("delivery", {
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

// Rates per day the messages were sent; a day without sends is a gap, not a rate of 0.
function drawDeliveryDays(data) {
  drawChart("delivery-days", {
    type: "line",
    data: dailyLines(data.days, asPercent, [["Delivered", "delivery_rate", COLORS.accent],
                                            ["Read", "read_rate", COLORS.read]]),
    options: {
      plugins: { tooltip: { callbacks: {
        label: (item) => `${item.dataset.label}: ${item.raw.toFixed(1)}%`,
      } } },
      scales: { y: { min: 0, max: 100, ticks: { callback: (v) => `${v}%` } } },
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

// Waits per day by verdict, stacked: within target, late, and still open past target.
function drawSlaDays(data) {
  const t = data.totals;
  document.getElementById("sla-summary").textContent =
    `${percent(t.attainment_rate)} within target: ${count(t.answered_within_target)} answered in ` +
    `time, ${count(t.answered_late)} late, ${count(t.open_past_target)} unanswered past target, ` +
    `${count(t.open_within_target)} still within it`;
  const series = [["Within target", "answered_within_target", COLORS.accent],
                  ["Answered late", "answered_late", COLORS.p90],
                  ["Open past target", "open_past_target", COLORS.failed]];
  drawChart("sla-days", {
    type: "bar",
    data: { labels: data.days.map((d) => d.activity_date),
            datasets: series.map(([label, key, color]) => ({
              label, key, data: data.days.map((d) => d[key]), backgroundColor: color })) },
    options: { scales: { x: { stacked: true }, y: { stacked: true, beginAtZero: true } } },
  });
}

const BUCKETS = [["< 1m", "first_responses_under_1m"], ["1–5m", "first_responses_1_to_5m"],
                 ["5–15m", "first_responses_5_to_15m"], ["15–60m", "first_responses_15_to_60m"],
                 ["≥ 60m", "first_responses_over_60m"]];

function drawSlaBuckets(data) {
  drawChart("sla-buckets", {
    type: "bar",
    data: { labels: BUCKETS.map(([label]) => label),
            datasets: [{ label: "First responses", data: BUCKETS.map(([, key]) => data.totals[key]),
                         backgroundColor: COLORS.accent }] },
    options: { plugins: { legend: { display: false } }, scales: { y: { beginAtZero: true } } },
  });
}

// The breaches listed (the latest first) and the CSV exports of every row behind the figures.
function drawSlaBreaches(data) {
  for (const [mart, href] of Object.entries(data.exports)) {
    const link = document.getElementById(`export-${mart}`);
    if (link) link.href = href;
  }
  const shown = data.breaches.length;
  document.getElementById("sla-breaches-count").textContent =
    `(${count(data.totals.breached)} in the period` +
    (data.totals.breached > shown ? `, the latest ${shown} listed)` : ")");
  const body = document.querySelector("#sla-breaches tbody");
  body.replaceChildren(...data.breaches.map((breach) => {
    const row = document.createElement("tr");
    if (breach.is_open) row.className = "open";
    const cells = [breach.contact_id, breach.activity_date,
                   breach.wait_kind === "first_response" ? "first" : "next",
                   breach.waiting_since.slice(0, 16).replace("T", " "),
                   breach.is_open ? "unanswered" : (breach.agent_id || "unattributed"),
                   duration(breach.target_seconds), duration(breach.business_seconds),
                   duration(breach.seconds_late)];
    for (const text of cells) {
      const cell = document.createElement("td");
      cell.textContent = text;
      row.append(cell);
    }
    return row;
  }));
}

// An estimated amount in its currency: cents, or a tenth of one for sub-cent rates.
const money = (amount, currency) => (amount === null || amount === undefined ? "–"
  : `${amount.toLocaleString("en-US", { minimumFractionDigits: 2, maximumFractionDigits: 4 })} ${currency}`);
const CATEGORY_COLORS = { marketing: COLORS.accent, marketing_lite: COLORS.accentSoft,
                          utility: COLORS.read, authentication: COLORS.p90,
                          authentication_international: "#f1c40f", service: COLORS.ink };
const PRICING_TYPES = { regular: "regular (charged)",
                        free_customer_service: "customer service window",
                        free_entry_point: "free entry point (ads, 72 h)" };

// Per currency (never added together): what was spent, on how many messages, and saved.
function drawCostTotals(data) {
  const list = document.getElementById("costs-totals");
  const items = data.totals.map((t) => {
    const item = document.createElement("li");
    item.dataset.currency = t.currency || "";
    if (t.currency === null) {
      item.textContent = `${count(t.messages_without_rate)} messages without a rate ` +
        "(the rate card has no price for their category and market: cost unknown)";
    } else {
      item.dataset.cost = String(t.estimated_cost);
      item.dataset.savings = String(t.estimated_savings);
      item.textContent = `${money(t.estimated_cost, t.currency)} estimated on ` +
        `${count(t.messages_charged)} charged messages; ${count(t.messages_free)} free ` +
        `messages saved ${money(t.estimated_savings, t.currency)}`;
    }
    return item;
  });
  if (!items.length) {
    const none = document.createElement("li");
    none.textContent = "No priced messages in this period";
    items.push(none);
  }
  list.replaceChildren(...items);
}

// Spend per day, a bar per category stacked by currency (a stack never mixes currencies);
// spend without a rate has no known cost and is left out.
function drawCostDays(data) {
  const series = (data.days[0] || { spend: [] }).spend
    .map((s, index) => ({ ...s, index })).filter((s) => s.currency !== null);
  const currencies = [...new Set(series.map((s) => s.currency))];
  const datasets = series.map((s) => ({
    label: `${s.pricing_category || "uncategorised"} (${s.currency})`, stack: s.currency,
    data: data.days.map((d) => d.spend[s.index].estimated_cost),
    charged: data.days.map((d) => d.spend[s.index].messages_charged),
    currency: s.currency,
    backgroundColor: CATEGORY_COLORS[s.pricing_category] || "#95a5a6",
  }));
  if (!datasets.length) {
    datasets.push({ label: "Estimated spend", data: data.days.map(() => 0),
                    backgroundColor: COLORS.accent });
  }
  drawChart("costs-days", {
    type: "bar",
    data: { labels: data.days.map((d) => d.activity_date), datasets },
    options: {
      plugins: { tooltip: { callbacks: {
        label: (item) => (item.dataset.currency
          ? `${item.dataset.label}: ${money(item.raw, item.dataset.currency)}, ` +
            `${count(item.dataset.charged[item.dataIndex])} charged messages`
          : `${item.dataset.label}: 0`),
      } } },
      scales: { x: { stacked: true },
                y: { stacked: true, beginAtZero: true,
                     title: { display: true,
                              text: currencies.length === 1 ? `estimated cost (${currencies[0]})`
                                : "estimated cost" } } },
    },
  });
}

// What each pricing type saved (free windows) beside what was charged, per currency.
function drawCostFree(data) {
  const body = document.querySelector("#costs-free tbody");
  const rows = data.by_pricing_type.map((t) => {
    const row = document.createElement("tr");
    row.dataset.pricingType = t.pricing_type || "";
    row.dataset.currency = t.currency || "";
    const cells = [PRICING_TYPES[t.pricing_type] || t.pricing_type || "not given by Meta",
                   count(t.messages_free), money(t.estimated_savings, t.currency),
                   count(t.messages_charged), money(t.estimated_cost, t.currency)];
    for (const text of cells) {
      const cell = document.createElement("td");
      cell.textContent = text;
      row.append(cell);
    }
    return row;
  });
  body.replaceChildren(...(rows.length ? rows : [emptyRow(body, "No priced messages in this period")]));
}

function emptyRow(body, text) {
  const row = document.createElement("tr");
  const cell = document.createElement("td");
  cell.className = "empty";
  cell.colSpan = body.closest("table").querySelectorAll("thead th").length;
  cell.textContent = text || body.dataset.empty;
  row.append(cell);
  return row;
}

// A cell's text by its column: rates as percentages, medians as durations, counts grouped.
function cellText(row, key) {
  const value = row[key];
  if (key.endsWith("_rate")) return percent(value);
  if (key.startsWith("median_")) return duration(value);
  if (typeof value === "number") return count(value);
  return value === null || value === undefined ? "–" : String(value);
}

const FIRST_CELL = {
  campaigns: (c) => c.campaign_name || c.campaign_id,
  templates: (t) => (t.template_language ? `${t.template_name} (${t.template_language})` : t.template_name),
  ads: (ad) => {
    const text = ad.headline || ad.source_id;
    if (!ad.source_url || !/^https?:\/\//.test(ad.source_url)) return text;
    const link = document.createElement("a");
    link.href = ad.source_url;
    link.rel = "noopener noreferrer";
    link.target = "_blank";
    link.textContent = text;
    return link;
  },
};

// Draws a sortable table's rows in its chosen order (the API's until a header is clicked):
// numbers and text compared as such, nulls last either way.
function renderTable(id) {
  const table = document.getElementById(id);
  const body = table.querySelector("tbody");
  const keys = [...table.querySelectorAll("thead button")].map((button) => button.dataset.key);
  const sort = window.dashboard.sort[id];
  const rows = [...(window.dashboard.tables[id] || [])];
  if (sort) {
    const sign = sort.direction === "ascending" ? 1 : -1;
    rows.sort((a, b) => {
      const x = a[sort.key];
      const y = b[sort.key];
      if (x === null || x === undefined) return y === null || y === undefined ? 0 : 1;
      if (y === null || y === undefined) return -1;
      return sign * (typeof x === "number" ? x - y : String(x).localeCompare(String(y)));
    });
  }
  for (const button of table.querySelectorAll("thead button")) {
    const header = button.closest("th");
    if (sort && button.dataset.key === sort.key) header.setAttribute("aria-sort", sort.direction);
    else header.removeAttribute("aria-sort");
  }
  body.replaceChildren(...(rows.length ? rows.map((item) => {
    const row = document.createElement("tr");
    keys.forEach((key, index) => {
      const cell = document.createElement("td");
      cell.append(index === 0 && FIRST_CELL[id] ? FIRST_CELL[id](item) : cellText(item, key));
      if (key === "messages_failed" && item.failures_by_error_code) {
        const codes = Object.entries(item.failures_by_error_code);
        if (codes.length) cell.title = codes.map(([code, n]) => `${code}: ${n}`).join(", ");
      }
      row.append(cell);
    });
    return row;
  }) : [emptyRow(body)]));
}

// A click on a header sorts by its column: numbers largest first, text A to Z; a second click
// reverses the order.
function sortBy(id, key) {
  const current = window.dashboard.sort[id];
  const sample = (window.dashboard.tables[id] || []).find((row) => row[key] !== null);
  const first = sample && typeof sample[key] === "number" ? "descending" : "ascending";
  const direction = current && current.key === key
    ? (current.direction === "ascending" ? "descending" : "ascending") : first;
  window.dashboard.sort[id] = { key, direction };
  renderTable(id);
}

function drawTable(id, rows) {
  window.dashboard.tables[id] = rows;
  renderTable(id);
}

function drawAdsSummary(data) {
  const t = data.totals;
  document.getElementById("ads-summary").textContent = t.conversations === 0
    ? "No ads in this period"
    : `${count(t.conversations)} conversations from ads: ${count(t.new_contacts)} new contacts, ` +
      `${count(t.returning_contacts)} returning; ${percent(t.answer_rate)} answered, median ` +
      `first response ${duration(t.median_first_response_seconds)}; ` +
      `${count(t.free_entry_point_messages)} free entry point messages`;
}

// Conversations opened per day, a bar per ad, stacked.
function drawAdsDays(data) {
  const palette = [COLORS.accent, COLORS.read, COLORS.p90, COLORS.ink, COLORS.failed, "#8e44ad"];
  const datasets = data.ads.map((ad, index) => ({
    label: ad.headline || ad.source_id, sourceId: ad.source_id,
    data: data.days.map((d) => d.conversations_by_ad[ad.source_id] || 0),
    backgroundColor: palette[index % palette.length],
  }));
  if (!datasets.length) {
    datasets.push({ label: "Conversations from ads", data: data.days.map((d) => d.conversations),
                    backgroundColor: COLORS.accent });
  }
  drawChart("ads-days", {
    type: "bar",
    data: { labels: data.days.map((d) => d.activity_date), datasets },
    options: { scales: { x: { stacked: true },
                         y: { stacked: true, beginAtZero: true, ticks: { precision: 0 } } } },
  });
}

async function fillBusinessNumbers(selected) {
  const select = document.getElementById("business_number");
  const { business_numbers: numbers } = await getJSON(API + "business-numbers", "");
  const known = numbers.map((n) => n.business_number);
  // A number from the address without inbound traffic stays selectable, so Apply keeps it.
  if (selected && !known.includes(selected)) known.push(selected);
  for (const number of known) select.append(new Option(number, number, false, number === selected));
}

// "updated 12 s ago"; minutes, hours and days when longer.
function ago(seconds) {
  if (seconds < 120) return `${seconds} s`;
  if (seconds < 7200) return `${Math.round(seconds / 60)} min`;
  if (seconds < 172800) return `${Math.round(seconds / 3600)} h`;
  return `${Math.round(seconds / 86400)} days`;
}

// Ticks every second: how long ago the marts were built, and the banner when they are stale.
function showFreshness() {
  const freshness = window.dashboard.freshness;
  if (!freshness) return;
  const interval = Number(document.body.dataset.refreshSeconds);
  const staleAfter = interval * Number(document.body.dataset.staleAfterIntervals);
  const line = document.getElementById("freshness");
  const banner = document.getElementById("stale");
  let stale = null;
  if (freshness.built_at === null) {
    line.textContent = "never updated";
    delete line.dataset.ageSeconds;
    stale = "These figures are not kept up to date: no build of the marts has passed yet. " +
      "Start `wa-analytics transform` (or run `wa-analytics dbt build`).";
  } else {
    const now = Date.now() + window.dashboard.skewMs;
    const age = Math.max(0, Math.round((now - Date.parse(freshness.built_at)) / 1000));
    const until = freshness.as_of
      ? `, events stored until ${freshness.as_of.slice(0, 19).replace("T", " ")} UTC` : "";
    line.textContent = `updated ${ago(age)} ago${until}`;
    line.dataset.ageSeconds = String(age);
    if (age > staleAfter) {
      stale = `Stale figures: the marts were last updated ${ago(age)} ago; they should be ` +
        `every ${interval} s. The transform may be stopped, or its builds failing.`;
    }
  }
  banner.textContent = stale || "";
  banner.hidden = !stale;
  document.body.dataset.stale = stale ? "true" : "false";
}

let latestLoad = 0;

// Loads every panel for the filters in the address; a refresh (`background`) redraws in place
// and leaves body[data-state] as it was unless it changes between ready and error.
async function load({ background = false } = {}) {
  const ticket = ++latestLoad;  // a slower, older answer must not overwrite a newer one
  if (!background) document.body.dataset.state = "loading";
  const params = filters();
  const names = ["response-times", "contact-growth", "peak-hours", "delivery", "agents", "sla",
                 "costs", "campaigns", "ads"];
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
    window.dashboard.freshness = { built_at: summary.built_at, as_of: summary.as_of };
    const form = document.getElementById("filters");
    if (!background || !form.dataset.edited) {  // never over dates the user has not applied
      document.getElementById("start").value = summary.start;
      document.getElementById("end").value = summary.end;
    }
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
    drawDeliveryDays(data.delivery);
    drawAgents(data.agents);
    drawSlaDays(data.sla);
    drawSlaBuckets(data.sla);
    drawSlaBreaches(data.sla);
    drawCostTotals(data.costs);
    drawCostDays(data.costs);
    drawCostFree(data.costs);
    drawTable("campaigns", data.campaigns.campaigns);
    drawTable("templates", data.campaigns.templates);
    drawAdsSummary(data.ads);
    drawAdsDays(data.ads);
    drawTable("ads", data.ads.ads);
    showFreshness();
    document.getElementById("error").hidden = true;
    window.dashboard.loads += 1;
    // A refresh may have overtaken the user's load (then still "loading"): it ends it.
    const state = document.body.dataset.state;
    if (!background || state === "error" || state === "loading") document.body.dataset.state = "ready";
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
  form.addEventListener("input", () => { form.dataset.edited = "true"; });
  for (const button of document.querySelectorAll("table.sortable thead button")) {
    const id = button.closest("table").id;
    button.addEventListener("click", () => sortBy(id, button.dataset.key));
  }
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    clearTimeout(window.dashboard.refreshTimer);
    delete form.dataset.edited;
    const next = new URLSearchParams(new FormData(form));
    for (const key of [...next.keys()]) if (!next.get(key)) next.delete(key);
    window.history.replaceState(null, "", `?${next}`);
    load().then(scheduleRefresh);
  });
  load().then(scheduleRefresh);
  setInterval(showFreshness, 1000);
});

// The next refresh an interval after this one ends (a slow answer never piles requests up).
function scheduleRefresh() {
  clearTimeout(window.dashboard.refreshTimer);
  const seconds = Number(document.body.dataset.refreshSeconds) || 30;
  window.dashboard.refreshTimer = setTimeout(
    () => load({ background: true }).then(scheduleRefresh), seconds * 1000);
}
