// The HUD: a read-only view of one project, refreshed every few seconds through
// the HTTP API with the project's token. Everything shown is set as text, never
// as markup.
"use strict";

const REFRESH_MS = 5000;
const STATUSES = ["queued", "running", "complete", "error", "cancelled", "timeout", "killed"];
const $ = (id) => document.getElementById(id);

function credentials() {
  const project = sessionStorage.getItem("workhorse.project");
  const token = sessionStorage.getItem("workhorse.token");
  return project && token ? { project, token } : null;
}

async function api(path) {
  const { token } = credentials();
  const response = await fetch(path, { headers: { Authorization: "OAuth " + token } });
  const body = await response.json().catch(() => ({}));
  if (!response.ok) {
    const why = response.status === 401 ? "the token was refused" : body.msg || response.statusText;
    throw new Error(`${path}: ${response.status} ${why}`);
  }
  return body;
}

function table(id, headings, rows, numeric = []) {
  const el = $(id);
  el.replaceChildren();
  const head = el.createTHead().insertRow();
  for (const h of headings) {
    const th = document.createElement("th");
    th.textContent = h;
    head.appendChild(th);
  }
  const body = el.createTBody();
  if (rows.length === 0) {
    const cell = body.insertRow().insertCell();
    cell.colSpan = headings.length;
    cell.textContent = "none";
    return;
  }
  for (const row of rows) {
    const tr = body.insertRow();
    row.forEach((value, i) => {
      const td = tr.insertCell();
      td.textContent = value === null || value === undefined ? "-" : String(value);
      if (numeric.includes(i)) td.className = "n";
      if (headings[i] === "status") td.className = "status-" + value;
    });
  }
}

async function refresh() {
  const { project } = credentials();
  const p = encodeURIComponent(project);
  const [stats, runners, tasks, queues] = await Promise.all([
    api(`/v1/projects/${p}/stats`),
    api(`/v1/projects/${p}/runners`),
    api(`/2/projects/${p}/tasks?per_page=20`),
    api(`/3/projects/${p}/queues?per_page=30`),
  ]);
  const infos = await Promise.all(
    queues.queues.map((q) => api(`/3/projects/${p}/queues/${encodeURIComponent(q.name)}`)),
  );
  const codes = Object.entries(stats.codes).sort(([a], [b]) => a.localeCompare(b));
  table(
    "codes",
    ["code", ...STATUSES],
    codes.map(([code, counts]) => [code, ...STATUSES.map((s) => counts[s] || 0)]),
    STATUSES.map((_, i) => i + 1),
  );
  table(
    "runners",
    ["id", "host", "cluster", "running", "sandbox", "state", "heartbeat"],
    runners.runners.map((r) => [
      r.id, r.host, r.cluster, `${r.running}/${r.concurrency}`, r.sandbox, r.status,
      `${r.heartbeat_age.toFixed(1)} s`,
    ]),
  );
  table(
    "queues",
    ["queue", "messages", "posted in all"],
    infos.map(({ queue }) => [queue.name, queue.size, queue.total_messages]),
    [1, 2],
  );
  table(
    "tasks",
    ["id", "code", "status", "created", "ms"],
    tasks.tasks.map((t) => [t.id, t.code_name, t.status, t.created_at, t.duration]),
    [4],
  );
}

async function loop() {
  try {
    await refresh();
    $("error").hidden = true;
    $("updated").textContent = "updated " + new Date().toLocaleTimeString();
  } catch (err) {
    $("error").textContent = err.message;
    $("error").hidden = false;
  }
  if (credentials()) setTimeout(loop, REFRESH_MS);
}

function show() {
  const signedIn = credentials() !== null;
  $("signin").hidden = signedIn;
  $("board").hidden = !signedIn;
  $("signout").hidden = !signedIn;
  $("project").textContent = signedIn ? "project " + credentials().project : "";
  if (signedIn) loop();
}

$("signin").addEventListener("submit", (event) => {
  event.preventDefault();
  sessionStorage.setItem("workhorse.project", $("signin-project").value.trim());
  sessionStorage.setItem("workhorse.token", $("signin-token").value.trim());
  show();
});
$("signout").addEventListener("click", () => {
  sessionStorage.clear();
  location.reload();
});
show();
