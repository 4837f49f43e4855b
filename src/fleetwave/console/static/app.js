// Fleetwave console: plain JavaScript, no dependencies. Every API call goes to /console/api/..., where the
// console's server signs it; the page itself holds no credential. Pages re-read the API every second.
"use strict";

const POLL_MS = 1000;
const page = document.getElementById("page");
const banner = document.getElementById("error");
const live = document.getElementById("live");
let current = null; // {refresh: async fn} of the page on screen
let timer = null;

// --- helpers -----------------------------------------------------------------------------------------

function h(tag, attrs, ...children) {
  const el = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs || {})) {
    if (value === undefined || value === null || value === false) continue;
    if (key.startsWith("on")) el.addEventListener(key.slice(2), value);
    else if (key === "class") el.className = value;
    else if (key === "dataset") Object.assign(el.dataset, value);
    else el.setAttribute(key, value === true ? "" : value);
  }
  for (const child of children.flat()) {
    if (child === undefined || child === null || child === false) continue;
    el.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return el;
}

class ApiError extends Error {
  constructor(type, status, message) {
    super(message);
    this.type = type;
    this.status = status;
  }
  toString() {
    return `${this.type}: ${this.message}`;
  }
}

async function api(path, { method = "POST", body, query } = {}) {
  const params = query ? "?" + new URLSearchParams(Object.entries(query).filter(([, v]) => v != null)) : "";
  let response;
  try {
    const url = path.startsWith("/console/") ? path : `/console/api${path}`;
    response = await fetch(`${url}${params}`, {
      method,
      headers: { "x-fleetwave-console": "1", "content-type": "application/json" },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
  } catch (error) {
    throw new ApiError("ConsoleUnreachable", 0, `the console's server does not answer (${error.message})`);
  }
  const text = await response.text();
  let data = {};
  try {
    data = text ? JSON.parse(text) : {};
  } catch {
    data = { message: text };
  }
  if (!response.ok) {
    const type = response.headers.get("x-amzn-ErrorType") || `HTTP ${response.status}`;
    throw new ApiError(type.split(":")[0], response.status, data.message || response.statusText);
  }
  return data;
}

const call = (operation, body = {}) => api(`/${operation}`, { body });
const view = (what, query) => api(`/console/view/${what}`, { method: "GET", query });

async function all(operation, body, key) {
  const items = [];
  let nextToken;
  do {
    const answer = await call(operation, { ...body, ...(nextToken ? { nextToken } : {}) });
    items.push(...(answer[key] || []));
    nextToken = answer.nextToken;
  } while (nextToken);
  return items;
}

async function allGet(path, query, key) {
  const items = [];
  let nextToken;
  do {
    const answer = await api(path, { method: "GET", query: { ...query, ...(nextToken ? { nextToken } : {}) } });
    items.push(...(answer[key] || []));
    nextToken = answer.nextToken;
  } while (nextToken);
  return items;
}

function showError(error) {
  if (!error) {
    banner.hidden = true;
    banner.textContent = "";
    return;
  }
  banner.hidden = false;
  banner.textContent = error instanceof ApiError ? error.toString() : String(error);
}

const when = (seconds) => (seconds ? new Date(seconds * 1000).toLocaleString() : "");
const idOf = (arn) => (arn || "").split("/").pop();
const nameOf = (arn) => ((arn || "").split(":").slice(5).join(":").split("/")[1] || arn || "");
const status = (value) => h("span", { class: `status s-${value}` }, value || "");
const jobLink = (arn) => (arn ? h("a", { href: `#/jobs/${encodeURIComponent(arn)}` }, idOf(arn)) : "");

function table(headers, rows, attrs) {
  return h("table", attrs, h("thead", {}, h("tr", {}, headers.map((t) => h("th", {}, t)))), h("tbody", {}, rows));
}

function bar(percent) {
  const fill = h("span");
  fill.style.width = `${Math.max(0, Math.min(100, percent || 0))}%`;
  return h("span", { class: "bar", title: `${Math.round(percent || 0)}%` }, fill);
}

function replace(id, node) {
  const old = document.getElementById(id);
  if (old) old.replaceWith(node);
  node.id = id;
}

// --- pages -------------------------------------------------------------------------------------------

const pages = {
  fleets: () => ({
    build() {
      page.append(h("h1", {}, "Fleets"), h("div", { id: "fleets" }));
    },
    async refresh() {
      const fleets = await all("listFleets", {}, "fleetDetails");
      const details = await Promise.all(fleets.map((f) => call("describeFleet", { fleet: f.arn })));
      replace(
        "fleets",
        table(
          ["fleet", "robots", "last deployment", "status", "when"],
          details.map((f) =>
            h("tr", { dataset: { fleet: f.name } },
              h("td", {}, f.name),
              h("td", { class: "num" }, (f.robots || []).length),
              h("td", {}, jobLink(f.lastDeploymentJob)),
              h("td", {}, status(f.lastDeploymentStatus)),
              h("td", { class: "muted" }, when(f.lastDeploymentTime)))
          ),
        ),
      );
    },
  }),

  robots: () => ({
    build() {
      page.append(h("h1", {}, "Robots"), h("div", { id: "robots" }));
    },
    async refresh() {
      const robots = await all("listRobots", {}, "robots");
      replace(
        "robots",
        table(
          ["robot", "status", "architecture", "fleet", "last deployment", "when"],
          robots.map((r) =>
            h("tr", { dataset: { robot: r.name } },
              h("td", {}, r.name),
              h("td", {}, status(r.status)),
              h("td", {}, r.architecture),
              h("td", {}, nameOf(r.fleetArn)),
              h("td", {}, jobLink(r.lastDeploymentJob)),
              h("td", { class: "muted" }, when(r.lastDeploymentTime)))
          ),
        ),
      );
    },
  }),

  applications: () => ({
    build() {
      page.append(h("h1", {}, "Robot applications"), h("div", { id: "applications" }));
    },
    async refresh() {
      const versions = await all("listRobotApplications", { versionQualifier: "ALL" }, "robotApplicationSummaries");
      const byName = new Map();
      for (const v of versions) byName.set(v.name, [...(byName.get(v.name) || []), v]);
      replace(
        "applications",
        table(
          ["application", "software suite", "versions", "last updated"],
          [...byName.entries()].map(([name, list]) => {
            const numbered = list.filter((v) => v.version !== "$LATEST").map((v) => v.version);
            const suite = list[0].robotSoftwareSuite || {};
            const latest = Math.max(...list.map((v) => v.lastUpdatedAt || 0));
            return h("tr", { dataset: { application: name } },
              h("td", {}, name),
              h("td", {}, `${suite.name || ""} ${suite.version || ""}`),
              h("td", {}, ["$LATEST", ...numbered].join(", ")),
              h("td", { class: "muted" }, when(latest)));
          }),
        ),
      );
    },
  }),

  jobs: () => ({
    build() {
      page.append(
        h("h1", {}, "Deployment jobs"),
        h("div", { class: "toolbar" },
          h("button", { id: "new-job", class: "primary", onclick: toggleJobForm }, "Create deployment job"),
          h("select", { id: "sync-fleet", "aria-label": "fleet to sync" }),
          h("button", { id: "sync", onclick: syncFleet }, "Sync fleet"),
          h("button", { id: "rollback", onclick: rollbackFleet }, "Roll fleet back"),
          h("span", { id: "sync-error", class: "action-error" })),
        jobForm(),
        h("div", { id: "jobs" }),
      );
      fillFleets(document.getElementById("sync-fleet"));
    },
    async refresh() {
      const jobs = await all("listDeploymentJobs", {}, "deploymentJobs");
      jobs.sort((a, b) => (b.createdAt || 0) - (a.createdAt || 0));
      replace(
        "jobs",
        table(
          ["job", "fleet", "status", "failure", "created"],
          jobs.map((j) =>
            h("tr", { dataset: { job: idOf(j.arn) } },
              h("td", {}, jobLink(j.arn)),
              h("td", {}, nameOf(j.fleet)),
              h("td", {}, status(j.status), held(j)),
              h("td", {}, j.failureCode ? `${j.failureCode}: ${j.failureReason || ""}` : j.failureReason || ""),
              h("td", { class: "muted" }, when(j.createdAt)))
          ),
        ),
      );
    },
  }),

  job: (arn) => rolloutPage("job", { arn }, arn),
  deployment: (id) => rolloutPage("deployment", { id }, id),

  greengrass: () => ({
    build() {
      page.append(h("h1", {}, "Greengrass"), h("h2", {}, "Deployments"), h("div", { id: "gg-deployments" }),
        h("h2", {}, "Core devices"), h("div", { id: "gg-devices" }));
    },
    async refresh() {
      const [deployments, devices] = await Promise.all([
        allGet("/greengrass/v2/deployments", { historyFilter: "ALL" }, "deployments"),
        allGet("/greengrass/v2/coreDevices", {}, "coreDevices"),
      ]);
      deployments.sort((a, b) => (b.creationTimestamp || 0) - (a.creationTimestamp || 0));
      replace("gg-deployments", table(["deployment", "name", "target", "revision", "status", "created"],
        deployments.map((d) =>
          h("tr", { dataset: { deployment: d.deploymentId } },
            h("td", {}, h("a", { href: `#/deployments/${encodeURIComponent(d.deploymentId)}` }, d.deploymentId)),
            h("td", {}, d.deploymentName || ""),
            h("td", {}, d.targetArn.split(":").slice(5).join(":")),
            h("td", { class: "num" }, d.revisionId),
            h("td", {}, status(d.deploymentStatus)),
            h("td", { class: "muted" }, when(d.creationTimestamp))))));
      replace("gg-devices", table(["core device", "status", "architecture", "platform", "last status"],
        devices.map((d) =>
          h("tr", { dataset: { device: d.coreDeviceThingName } },
            h("td", {}, d.coreDeviceThingName),
            h("td", {}, status(d.status)),
            h("td", {}, d.architecture || ""),
            h("td", {}, d.platform || ""),
            h("td", { class: "muted" }, when(d.lastStatusUpdateTimestamp))))));
    },
  }),
};

// --- the live view of one rollout --------------------------------------------------------------------

function rolloutPage(kind, query, key) {
  let architectures = {};
  return {
    build() {
      page.append(
        h("h1", {}, kind === "job" ? "Deployment job " : "Greengrass deployment ", h("span", { id: "rollout-id" }, idOf(key))),
        h("div", { id: "rollout" }),
        h("div", { class: "toolbar" },
          h("button", { id: "cancel-job", class: "danger", onclick: () => cancelRollout(kind, key) }, "Cancel"),
          h("span", { id: "cancel-error", class: "action-error" }),
          kind === "job" ? controls(key) : []),
      );
    },
    async refresh() {
      const v = await view(kind, query);
      if (kind === "job" && v.robots.some((r) => !(r.name in architectures)) && v.fleet) {
        const robots = await all("listRobots", { filters: [{ name: "fleetName", values: [nameOf(v.fleet)] }] }, "robots");
        architectures = Object.fromEntries(robots.map((r) => [r.name, r.architecture]));
      }
      document.getElementById("cancel-job").disabled = v.done;
      if (kind === "job") showControls(v);
      replace("rollout", renderRollout(v, architectures));
    },
  };
}

function renderRollout(v, architectures) {
  const facts = [
    ["status", h("span", { id: "job-status", class: `status s-${v.status}` }, v.status)],
    ["target", nameOf(v.fleet) || v.fleet],
    ["robots finished", `${v.finished} of ${v.robots.length}`],
  ];
  if (v.waveCount) facts.push(["wave", `${v.currentWave} of ${v.waveCount}`]);
  if (v.concurrency) facts.push(["wave size", `${v.concurrency}%`]);
  if (v.etaSeconds != null && !v.done) facts.push(["ETA (current wave)", `${v.etaSeconds} s`]);
  if (v.failureCode) facts.push(["failure", `${v.failureCode}: ${v.failureReason || ""}`]);
  for (const [name, value] of Object.entries(v.details || {})) {
    if (["string", "number", "boolean"].includes(typeof value)) facts.push([name, String(value)]);
  }
  const parts = [h("div", { class: "facts" }, facts.map(([label, value]) => h("div", {}, h("span", {}, label), value)))];

  const threshold = v.threshold ?? 100;
  const fill = h("div", { class: `fill${v.failedPercent > threshold ? " over" : ""}` });
  fill.style.width = `${Math.min(100, v.failedPercent)}%`;
  const mark = h("div", { class: "mark", title: `threshold ${threshold}%` });
  mark.style.left = `${threshold}%`;
  parts.push(
    h("h2", {}, "Failure threshold"),
    h("div", { id: "threshold", class: "gauge", dataset: { failed: v.failedPercent.toFixed(1), threshold } }, fill, mark),
    h("p", { class: "muted" }, `${v.failed} failed of ${v.robots.length} (${v.failedPercent.toFixed(0)}%); the job stops above ${threshold}%`),
  );

  if (v.waveCount) {
    const waves = [];
    for (let n = 1; n <= v.waveCount; n++) {
      const members = v.robots.filter((r) => r.wave === n);
      const released = n <= v.currentWave;
      const counts = {};
      for (const r of members) counts[r.status] = (counts[r.status] || 0) + 1;
      waves.push(h("div", { class: `wave${released ? "" : " pending"}`, dataset: { wave: n, released } },
        h("b", {}, `wave ${n}${released ? "" : " (not released)"}`),
        Object.entries(counts).map(([s, c]) => h("div", {}, status(s), ` ${c}`))));
    }
    parts.push(h("h2", {}, "Waves"), h("div", { class: "waves", id: "waves" }, waves));
  }

  parts.push(h("h2", {}, "Robots"), table(
    ["robot", "architecture", "wave", "status", "step", "progress", "failure"],
    v.robots.map((r) =>
      h("tr", { dataset: { robot: r.name, status: r.status } },
        h("td", {}, r.name),
        h("td", {}, architectures[r.name] || ""),
        h("td", { class: "num" }, r.wave || ""),
        h("td", { class: "robot-status" }, status(r.status)),
        h("td", {}, r.currentProgress || ""),
        h("td", {}, r.percentDone == null ? "" : [bar(r.percentDone), ` ${Math.round(r.percentDone)}%`]),
        h("td", { class: "failure" }, r.failureCode ? `${r.failureCode}${r.failureReason ? ": " + r.failureReason : ""}` : ""))),
    { id: "robot-table" },
  ));
  return h("div", {}, parts);
}

// --- rollout control (Fleetwave extensions, docs/extensions.md) ----------------------------------------

function held(job) {
  if (job.waitingForApproval) return h("span", { class: "muted held" }, ` waiting for approval of wave ${job.waitingForApproval.wave}`);
  if (job.paused) return h("span", { class: "muted held" }, " paused");
  return "";
}

function controls(arn) {
  const act = (operation, body) => async () => {
    const error = document.getElementById("control-error");
    error.textContent = "";
    try {
      const answer = await call(operation, { job: arn, ...body() });
      if (operation === "retryDeploymentJob") location.hash = `#/jobs/${encodeURIComponent(answer.arn)}`;
      else await tick();
    } catch (e) {
      error.textContent = String(e);
    }
  };
  const wave = () => ({ wave: Number(document.getElementById("approve-wave").dataset.wave) });
  return [
    h("button", { id: "approve-wave", class: "primary", hidden: true, onclick: act("approveDeploymentWave", wave) }, "Approve"),
    h("button", { id: "pause-job", hidden: true, onclick: act("pauseDeploymentJob", () => ({})) }, "Pause"),
    h("button", { id: "resume-job", hidden: true, onclick: act("resumeDeploymentJob", () => ({})) }, "Resume"),
    h("button", { id: "retry-job", hidden: true,
      onclick: act("retryDeploymentJob", () => ({ clientRequestToken: `console-retry-${Date.now()}` })) },
      "Retry failed robots"),
    h("span", { id: "control-error", class: "action-error" }),
  ];
}

function showControls(v) {
  const control = v.control || {};
  const approve = document.getElementById("approve-wave");
  approve.hidden = v.done || !control.waitingForApproval;
  if (control.waitingForApproval) {
    approve.dataset.wave = control.waitingForApproval.wave;
    approve.textContent = `Approve wave ${control.waitingForApproval.wave}`;
  }
  document.getElementById("pause-job").hidden = v.done || Boolean(control.paused);
  document.getElementById("resume-job").hidden = v.done || !control.paused;
  document.getElementById("retry-job").hidden = !v.done || v.failed === 0;
}

async function rollbackFleet() {
  const error = document.getElementById("sync-error");
  error.textContent = "";
  const fleet = document.getElementById("sync-fleet").value;
  try {
    const job = await call("rollbackFleet", { fleet, clientRequestToken: `console-rollback-${Date.now()}` });
    location.hash = `#/jobs/${encodeURIComponent(job.arn)}`;
  } catch (e) {
    error.textContent = String(e);
  }
}

async function cancelRollout(kind, key) {
  const error = document.getElementById("cancel-error");
  error.textContent = "";
  try {
    if (kind === "job") await call("cancelDeploymentJob", { job: key });
    else await api(`/greengrass/v2/deployments/${encodeURIComponent(key)}/cancel`, { method: "POST" });
    await tick();
  } catch (e) {
    error.textContent = String(e);
  }
}

// --- actions: create a deployment job, sync, roll back --------------------------------------------------

const JOB_FIELDS = [
  ["fleet", "Fleet", "select"],
  ["deploymentApplicationConfigs[0].application", "Robot application", "select"],
  ["deploymentApplicationConfigs[0].applicationVersion", "Version", "select"],
  ["deploymentApplicationConfigs[0].launchConfig.packageName", "Package name", "text"],
  ["deploymentApplicationConfigs[0].launchConfig.launchFile", "Launch file", "text"],
  ["deploymentApplicationConfigs[0].launchConfig.preLaunchFile", "Pre-launch file (optional)", "text"],
  ["deploymentApplicationConfigs[0].launchConfig.postLaunchFile", "Post-launch file (optional)", "text"],
  ["deploymentConfig.concurrentDeploymentPercentage", "Wave size, % of the fleet", "text"],
  ["deploymentConfig.failureThresholdPercentage", "Failure threshold, %", "text"],
  ["deploymentConfig.robotDeploymentTimeoutInSeconds", "Robot timeout, seconds", "text"],
  ["deploymentConfig.approval.after", "Approval gates (Fleetwave extension)", "choice",
    [["", "none"], ["FirstWave", "before wave 2"], ["EveryWave", "before every wave after the first"]]],
];
const NUMBERS = new Set(JOB_FIELDS.filter(([p, , kind]) => p.startsWith("deploymentConfig.") && kind === "text").map(([p]) => p));
let applicationVersions = [];

function jobForm() {
  const form = h("form", { id: "job-form", class: "panel", hidden: true, novalidate: true, onsubmit: createJob },
    JOB_FIELDS.map(([path, label, kind, choices]) =>
      h("label", {}, label,
        kind === "select" ? h("select", { name: path })
          : kind === "choice" ? h("select", { name: path }, choices.map(([value, text]) => h("option", { value }, text)))
          : h("input", { name: path, type: "text", autocomplete: "off" }),
        h("span", { class: "field-error", dataset: { for: path } }))),
    h("div", { class: "form-actions" },
      h("button", { id: "create-job", class: "primary", type: "submit" }, "Create"),
      h("button", { type: "button", onclick: toggleJobForm }, "Close"),
      h("span", { id: "form-error" })));
  form.elements["deploymentApplicationConfigs[0].application"].addEventListener("change", fillVersions);
  return form;
}

async function toggleJobForm() {
  const form = document.getElementById("job-form");
  form.hidden = !form.hidden;
  if (form.hidden) return;
  try {
    await fillFleets(form.elements.fleet);
    applicationVersions = await all("listRobotApplications", { versionQualifier: "ALL" }, "robotApplicationSummaries");
    const select = form.elements["deploymentApplicationConfigs[0].application"];
    const latest = applicationVersions.filter((v) => v.version === "$LATEST");
    select.replaceChildren(...latest.map((v) => h("option", { value: v.arn }, v.name)));
    fillVersions();
  } catch (e) {
    document.getElementById("form-error").textContent = String(e);
  }
}

function fillVersions() {
  const form = document.getElementById("job-form");
  const app = form.elements["deploymentApplicationConfigs[0].application"].value;
  const versions = applicationVersions.filter((v) => v.arn === app && v.version !== "$LATEST");
  versions.sort((a, b) => Number(b.version) - Number(a.version));
  form.elements["deploymentApplicationConfigs[0].applicationVersion"].replaceChildren(
    ...versions.map((v) => h("option", { value: v.version }, v.version)));
}

async function fillFleets(select) {
  const keep = select.value;
  const fleets = await all("listFleets", {}, "fleetDetails");
  select.replaceChildren(...fleets.map((f) => h("option", { value: f.arn }, f.name)));
  if (keep) select.value = keep;
}

function setPath(target, path, value) {
  const keys = path.replace(/\[(\d+)\]/g, ".$1").split(".");
  let node = target;
  keys.slice(0, -1).forEach((key, i) => {
    if (!(key in node)) node[key] = /^\d+$/.test(keys[i + 1]) ? [] : {};
    node = node[key];
  });
  node[keys[keys.length - 1]] = value;
}

async function createJob(event) {
  event.preventDefault();
  const form = event.target;
  for (const el of form.querySelectorAll(".field-error")) el.textContent = "";
  for (const el of form.querySelectorAll(".invalid")) el.classList.remove("invalid");
  document.getElementById("form-error").textContent = "";
  const body = { clientRequestToken: `console-${Date.now()}-${Math.random().toString(36).slice(2, 10)}` };
  for (const [path] of JOB_FIELDS) {
    const raw = form.elements[path].value.trim();
    if (raw === "") continue;
    // A number when it reads as one; otherwise as typed, so the API says what is wrong with it.
    setPath(body, path, NUMBERS.has(path) && /^-?\d+$/.test(raw) ? Number(raw) : raw);
  }
  setPath(body, "deploymentApplicationConfigs[0].launchConfig.packageName",
    body.deploymentApplicationConfigs?.[0]?.launchConfig?.packageName ?? "");
  setPath(body, "deploymentApplicationConfigs[0].launchConfig.launchFile",
    body.deploymentApplicationConfigs?.[0]?.launchConfig?.launchFile ?? "");
  const button = document.getElementById("create-job");
  button.disabled = true;
  try {
    const job = await call("createDeploymentJob", body);
    form.hidden = true;
    location.hash = `#/jobs/${encodeURIComponent(job.arn)}`;
  } catch (e) {
    showFieldErrors(form, e);
  } finally {
    button.disabled = false;
  }
}

function showFieldErrors(form, error) {
  // The API names each offending field: "deploymentConfig.failureThresholdPercentage: must be at most 100".
  const unplaced = [];
  for (const part of String(error.message).split("; ")) {
    const match = /^([\w.[\]]+)(?: \(key\))?: (.*)$/.exec(part);
    const slot = match && form.querySelector(`.field-error[data-for="${CSS.escape(match[1])}"]`);
    if (slot) {
      slot.textContent = match[2];
      form.elements[match[1]].classList.add("invalid");
    } else unplaced.push(part);
  }
  if (unplaced.length) document.getElementById("form-error").textContent = `${error.type}: ${unplaced.join("; ")}`;
}

async function syncFleet() {
  const error = document.getElementById("sync-error");
  error.textContent = "";
  const fleet = document.getElementById("sync-fleet").value;
  try {
    const job = await call("syncDeploymentJob", { fleet, clientRequestToken: `console-sync-${Date.now()}` });
    location.hash = `#/jobs/${encodeURIComponent(job.arn)}`;
  } catch (e) {
    error.textContent = String(e);
  }
}

// --- routing and polling -----------------------------------------------------------------------------

async function tick() {
  if (!current) return;
  const shown = current;
  try {
    await shown.refresh();
    if (shown === current) {
      showError(null);
      live.classList.remove("stale");
    }
  } catch (e) {
    if (shown === current) {
      showError(e);
      live.classList.add("stale");
    }
  }
}

function route() {
  const [, name = "jobs", arg] = /^#\/([^/]*)\/?(.*)$/.exec(location.hash) || [];
  const key = arg ? decodeURIComponent(arg) : null;
  const make = name === "jobs" && key ? () => pages.job(key)
    : name === "deployments" && key ? () => pages.deployment(key)
    : pages[name] || pages.jobs;
  for (const a of document.querySelectorAll("header nav a")) {
    a.classList.toggle("active", a.getAttribute("href") === `#/${name === "deployments" ? "greengrass" : name}`);
  }
  page.replaceChildren();
  showError(null);
  current = make();
  current.build();
  clearInterval(timer);
  tick();
  timer = setInterval(tick, POLL_MS);
}

window.addEventListener("hashchange", route);
route();
