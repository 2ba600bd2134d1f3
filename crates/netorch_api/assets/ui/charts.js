// The dashboard's telemetry charts (issue 29, point 3): three uPlot charts (latency,
// throughput, error rate) of series buckets, the mean with a band from min to max. What a
// chart shows is decided by the pure functions below (its range, its y span, its labels), so
// that the rules are one place and the browser check can read them back.

/** The metrics charted, as a person reads them, with the series' field and unit. */
export const METRICS = [
  { key: "latency_ms", word: "Latency", unit: "ms", minSpan: 1 },
  { key: "throughput_gbps", word: "Throughput", unit: "Gb/s", minSpan: 0.1 },
  { key: "error_rate", word: "Error rate", unit: "%", minSpan: 0.1 },
];

/** The ranges one may choose, in seconds back from now; 0 is "since it was created". */
export const RANGES = [
  ["since created", 0],
  ["last 5 minutes", 5 * 60],
  ["last 15 minutes", 15 * 60],
  ["last 1 hour", 3600],
  ["last 6 hours", 6 * 3600],
  ["last 24 hours", 24 * 3600],
  ["last 7 days", 7 * 24 * 3600],
];

/** "Since created" never spans less than this (a chart of the first seconds is one point)
 * nor more than a day (an old deployment opens on its last day). */
const SINCE_CREATED_MIN_MS = 10 * 1000;
const SINCE_CREATED_MAX_MS = 24 * 3600 * 1000;

/**
 * The time range a chart shows, `[start, end]` as Dates: `seconds` back from `now`, or with
 * `seconds` 0 from `created` (the deployment's or node's creation) to now, so that a young
 * deployment fills the chart's width instead of a sliver at its right edge.
 */
export function chartRange(seconds, created, now = new Date()) {
  if (seconds > 0) return [new Date(now.getTime() - seconds * 1000), now];
  const age = now.getTime() - created.getTime();
  const span = Math.min(SINCE_CREATED_MAX_MS, Math.max(SINCE_CREATED_MIN_MS, age));
  return [new Date(now.getTime() - span), now];
}

/**
 * The range drawn for `buckets` read over `range`: as read, except "since created" (`fit`),
 * which starts at the first bucket (a deployment's first samples come once its first nodes
 * run, seconds or minutes after its creation), so that the data fills the chart's width.
 */
export function drawnRange(range, buckets, fit) {
  if (!fit || !buckets.length) return range;
  const [, end] = range;
  const first = parseTime(buckets[0].timestamp);
  return [new Date(Math.min(first, end.getTime() - SINCE_CREATED_MIN_MS)), end];
}

/** The API's timestamps are UTC without an offset. */
const parseTime = (s) => Date.parse(/[zZ]|[+-]\d\d:\d\d$/.test(s) ? s : s + "Z");

/**
 * How often a page redraws its charts, in ms: every 3 s while what it charts is under 15
 * minutes old (its first nodes report within seconds of RUNNING), every 15 s after.
 */
export function chartRefreshMs(created, now = new Date()) {
  return now.getTime() - created.getTime() < 15 * 60 * 1000 ? 3000 : 15000;
}

/**
 * The y scale's range for data from `min` to `max`: never narrower than `minSpan` (nor than
 * 10 % of the values' size), so that 0.01 ms of noise is a flat line and not a cliff; centred
 * on the data and never below 0 (no metric is negative).
 */
export function yRange(min, max, minSpan) {
  if (min === null || max === null || !Number.isFinite(min) || !Number.isFinite(max)) return [0, minSpan];
  const span = Math.max(minSpan, 0.1 * Math.max(Math.abs(min), Math.abs(max)));
  if (max - min >= span) {
    const pad = 0.05 * (max - min);
    return [Math.max(0, min - pad), max + pad];
  }
  const low = Math.max(0, (min + max) / 2 - span / 2);
  return [low, low + span];
}

const pad2 = (n) => String(n).padStart(2, "0");

/**
 * The x axis's labels in 24-hour UTC, as the rest of the page writes times: `MM-DD HH:MM` over
 * more than a day, `HH:MM:SS` where ticks are less than a minute apart, `HH:MM` otherwise.
 */
export function timeLabels(splits, spanSeconds) {
  const step = splits.length > 1 ? splits[1] - splits[0] : spanSeconds;
  return splits.map((t) => {
    const d = new Date(t * 1000);
    const hm = `${pad2(d.getUTCHours())}:${pad2(d.getUTCMinutes())}`;
    if (spanSeconds > 24 * 3600) return `${pad2(d.getUTCMonth() + 1)}-${pad2(d.getUTCDate())} ${hm}`;
    if (step < 60) return `${hm}:${pad2(d.getUTCSeconds())}`;
    return hm;
  });
}

/** The y axis's labels: as many decimals as the step between ticks needs (2.5 has one, 0.25
 * two), no more. */
export function valueLabels(splits) {
  const step = splits.length > 1 ? Math.abs(splits[1] - splits[0]) : 1;
  let decimals = 0;
  while (decimals < 6 && Math.abs(step * 10 ** decimals - Math.round(step * 10 ** decimals)) > 1e-9 * 10 ** decimals) decimals++;
  return splits.map((v) => v.toFixed(decimals));
}

/** An axis as wide as its longest label (uPlot's default 50 px cut `19.065` to `9.065`). */
function axisWidth(u, values, axisIndex, cycle) {
  const axis = u.axes[axisIndex];
  if (cycle > 1 && axis._size) return axis._size;
  const longest = (values || []).reduce((a, v) => (String(v).length > a.length ? String(v) : a), "");
  u.ctx.font = axis.font[0];
  return Math.ceil(axis.ticks.size + axis.gap + u.ctx.measureText(longest).width / devicePixelRatio + 4);
}

/** The chart library's script, fetched when the first chart is drawn. */
const UPLOT_SRC = "/ui/assets/uPlot.iife.min.js";
let uplotLoading = null;

/**
 * uPlot (a classic script of 50 KB) is loaded by the first page that draws a chart, not by
 * every page: evaluating it took about 100 ms of a cold page's critical path on a busy two-core
 * machine, for pages (the fleet) that draw none.
 */
function loadUplot() {
  if (window.uPlot) return Promise.resolve();
  if (!uplotLoading) {
    uplotLoading = new Promise((resolve, reject) => {
      const script = document.createElement("script");
      script.src = UPLOT_SRC;
      script.onload = () => resolve();
      script.onerror = () => {
        uplotLoading = null;
        script.remove();
        reject(new Error("Charts: the chart library could not be loaded"));
      };
      document.head.append(script);
    });
  }
  return uplotLoading;
}

/**
 * Draws the charts of `buckets` over `range` into `container`, replacing its last ones (`fit`:
 * from the first bucket, see `drawnRange`); `disposers` collects what removes them (listeners,
 * plots). `emptyText` shows without data. Resolves once drawn (the chart library loaded first,
 * then the whole replacement at once, so that overlapping calls cannot interleave).
 */
export async function drawCharts(options) {
  await loadUplot();
  drawLoaded(options);
}

function drawLoaded({ h, container, buckets, range, fit, emptyText, disposers }) {
  for (const dispose of disposers.splice(0)) dispose();
  container.querySelector(".empty")?.remove();
  if (!buckets.length) {
    container.append(h("p", { class: "empty muted" }, emptyText));
    return;
  }
  const [start, end] = drawnRange(range, buckets, fit).map((t) => t.getTime() / 1000);
  const xs = buckets.map((b) => parseTime(b.timestamp) / 1000);
  // Every holder first, so that each is measured in the grid's final layout.
  const holders = METRICS.map(({ word, unit, key }) =>
    h("figure", { class: "chart", role: "img", "data-metric": key, "aria-label": `${word} (${unit}) over time, mean with minimum and maximum` }),
  );
  container.append(...holders);
  METRICS.forEach(({ key, word, unit, minSpan }, i) => {
    const holder = holders[i];
    const data = [xs, buckets.map((b) => b[key].mean), buckets.map((b) => b[key].min), buckets.map((b) => b[key].max)];
    const width = Math.max(260, holder.clientWidth || container.clientWidth || 600);
    const plot = new window.uPlot(
      {
        title: `${word} (${unit})`,
        width,
        height: 180,
        scales: {
          // The whole range asked for, however few buckets it holds so far.
          x: { time: true, range: () => [start, end] },
          y: { range: (u, min, max) => yRange(min, max, minSpan) },
        },
        axes: [
          // At least 80 px between times: `HH:MM:SS` labels never run into each other.
          { space: 80, values: (u, splits) => timeLabels(splits, end - start) },
          { values: (u, splits) => valueLabels(splits), size: axisWidth },
        ],
        legend: { live: false },
        series: [
          {},
          { label: "mean", stroke: "#1f5fbf", width: 2 },
          { label: "min", stroke: "#7a9cd0", width: 1 },
          { label: "max", stroke: "#7a9cd0", width: 1 },
        ],
        bands: [{ series: [3, 2], fill: "rgba(31, 95, 191, 0.15)" }],
      },
      data,
      holder,
    );
    // What the chart spans, for the browser check: the x range and where the first point sits.
    holder.dataset.xStart = String(start);
    holder.dataset.xEnd = String(end);
    holder.dataset.firstPoint = String(xs[0]);
    const resize = () => plot.setSize({ width: Math.max(260, holder.clientWidth), height: 180 });
    window.addEventListener("resize", resize);
    disposers.push(() => {
      window.removeEventListener("resize", resize);
      plot.destroy();
      holder.remove();
    });
  });
}
