// The fleet's health on every page (issue 29): whether worker loops are alive (lifecycle,
// telemetry, alerts) and the database answers and takes writes, from the open `GET /health`
// and `GET /ready`. When something is wrong the line becomes a banner that says what stops
// and what to do, so that a rollout showing "0 of 20" forever has its reason beside it.

/** What stops when no loop of a kind is alive, and the kinds in the order they are told. */
const KINDS = [
  ["lifecycle", "rollouts do not move (nodes stay where they are)"],
  ["telemetry", "no telemetry is collected from simulated nodes"],
  ["alerts", "alerts are neither evaluated nor told"],
];

/** What to do when loops are missing. */
const START_WORKERS =
  "Start a worker on this database (netorch-worker --database-url …), or run netorch-server " +
  "without --workers none.";

/**
 * The health line's text and whether it is a warning, from `/health`'s and `/ready`'s answers
 * (`ready` null when it could not be read).
 */
export function describeHealth(health, ready) {
  const problems = [];
  if (health.database !== "healthy") {
    problems.push("The database does not answer: nothing new is stored or served. Check the server's log and the database.");
  }
  if (ready && ready.status === "writes_failing") {
    problems.push("The database refuses writes for lack of space: free space or raise its limit.");
  }
  const alive = new Set((health.workers || []).filter((w) => w.alive).map((w) => w.kind));
  const missing = KINDS.filter(([kind]) => !alive.has(kind));
  if (health.database === "healthy" && missing.length) {
    const what = missing.map(([kind, stops]) => `no ${kind} worker is running: ${stops}`).join("; ");
    problems.push(`${what[0].toUpperCase()}${what.slice(1)}. ${START_WORKERS}`);
  }
  if (problems.length) return { warning: true, text: `Fleet degraded. ${problems.join(" ")}` };
  const loops = (health.workers || []).filter((w) => w.alive).length;
  return {
    warning: false,
    text: `Fleet healthy: ${loops} worker loop${loops === 1 ? "" : "s"} alive, database writable.`,
  };
}

/** Keeps `element` telling the fleet's health, read every `ms`; returns a function that stops it. */
export function watchHealth(element, ms = 10000) {
  let stopped = false;
  async function read(path) {
    const response = await fetch(path, { headers: { Accept: "application/json" } });
    return response.json();
  }
  async function update() {
    if (stopped || document.hidden) return;
    try {
      const [health, ready] = await Promise.all([read("/health"), read("/ready").catch(() => null)]);
      const { warning, text } = describeHealth(health, ready);
      element.textContent = text;
      element.classList.toggle("degraded", warning);
      element.dataset.health = warning ? "degraded" : "healthy";
    } catch {
      element.textContent = "The server does not answer: this page may be out of date.";
      element.classList.add("degraded");
      element.dataset.health = "unreachable";
    }
  }
  update();
  const id = setInterval(update, ms);
  return () => {
    stopped = true;
    clearInterval(id);
  };
}
