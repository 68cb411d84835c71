// The /admin audit page (issue 7, "Audit page"): a thin client of the admin API (/api/v1).
// Rules: the admin key lives in sessionStorage only; every value from the API is rendered as text
// (textContent / Text nodes, never innerHTML): event payloads come from identity providers.
"use strict";

const KEY = "scimledger.adminKey";
const $ = (id) => document.getElementById(id);
let nextCursor = null; // of the timeline query on screen
let lastFilters = []; // the [name, value] pairs of that query

// --- helpers -------------------------------------------------------------------------------------------
/** An element with attributes and children; strings become Text nodes (never parsed as HTML). */
function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs)) node.setAttribute(name, value);
  node.append(...children.map((c) => (c instanceof Node ? c : text(c))));
  return node;
}

function text(value) {
  if (value === null || value === undefined) return "";
  return typeof value === "object" ? JSON.stringify(value) : String(value);
}

/** A <dl> of an object's fields; nested values are shown as JSON text. */
function fields(target, object) {
  target.replaceChildren();
  for (const [name, value] of Object.entries(object || {})) {
    target.append(el("dt", {}, name), el("dd", {}, text(value)));
  }
  return target;
}

function showError(message) {
  $("error").textContent = message;
  $("error").hidden = !message;
}

class ApiError extends Error {
  constructor(message, signedOut = false) {
    super(message);
    this.signedOut = signedOut; // a 401: the sign-in form already says why
  }
}

/** GET an admin API path with the session's key; 401 signs out, other errors throw ApiError. */
async function api(path, params = []) {
  const url = new URL(path, window.location.origin);
  for (const [name, value] of params) url.searchParams.append(name, value);
  const response = await fetch(url, {
    headers: { Authorization: `Bearer ${sessionStorage.getItem(KEY) || ""}`, Accept: "application/json" },
    cache: "no-store",
    credentials: "omit",
  });
  const body = await response.json().catch(() => null);
  const detail = body && body.error ? `${body.error.code}: ${body.error.message}` : `HTTP ${response.status}`;
  if (response.status === 401) {
    signOut(`Signed out: ${detail}`);
    throw new ApiError(detail, true);
  }
  if (!response.ok) throw new ApiError(`${path} failed (${response.status}) ${detail}`);
  return body;
}

/** Run an action, showing its error (if any) in the alert line. */
async function attempt(action) {
  showError("");
  try {
    await action();
  } catch (error) {
    if (error.signedOut) return;
    showError(error instanceof ApiError ? error.message : `Unexpected error: ${error}`);
  }
}

// --- sign in / out -------------------------------------------------------------------------------------
async function signIn() {
  const workspace = await api("/api/v1/workspace");
  $("workspace").textContent = `Workspace ${workspace.name} (${workspace.id})`;
  $("sign-in").hidden = true;
  for (const id of ["console", "workspace", "sign-out"]) $(id).hidden = false;
  await Promise.all([attempt(verify), attempt(loadMembers), attempt(loadTokens), attempt(searchEvents)]);
}

/** Forget the key and everything shown with it. */
function signOut(message) {
  sessionStorage.removeItem(KEY);
  for (const id of ["console", "workspace", "sign-out"]) $(id).hidden = true;
  for (const id of ["verify-details", "checkpoint", "public-key", "member-view", "events-summary"]) {
    $(id).replaceChildren();
  }
  for (const table of ["events", "token-list"]) $(table).tBodies[0].replaceChildren();
  $("sign-in").hidden = false;
  $("sign-in-message").textContent = message || "";
  showError("");
}

// --- timeline (GET /api/v1/audit) ----------------------------------------------------------------------
function filterParams() {
  const form = new FormData($("filters"));
  const params = [];
  for (const name of ["member", "team", "actor", "source", "since", "until", "request_id", "order", "limit"]) {
    const value = String(form.get(name) || "").trim();
    if (value) params.push([name, value]);
  }
  for (const type of String(form.get("type") || "").split(/[\s,]+/)) if (type) params.push(["type", type]);
  if (form.get("include_internal")) params.push(["include", "internal"]);
  return params;
}

function eventRow(entry) {
  const actor = entry.actor || {};
  const data = el("details", {}, el("summary", {}, "data"), el("pre", {}, JSON.stringify(entry.data, null, 2)));
  const row = el(
    "tr",
    { "data-position": String(entry.position) },
    el("td", {}, text(entry.position)),
    el("td", {}, el("time", { datetime: entry.recorded_at }, entry.recorded_at)),
    el("td", { class: "type" }, entry.type),
    el("td", { title: `${actor.kind || ""} ${actor.id || ""}` }, actor.name || actor.id || ""),
    el("td", {}, entry.source),
    el("td", { title: entry.stream_id }, `${String(entry.stream_id).slice(0, 8)} v${entry.stream_version}`),
    el("td", {}, entry.request_id),
    el("td", {}, data),
  );
  row.title = `hash ${entry.hash}`;
  return row;
}

async function showEvents(params, append) {
  const page = await api("/api/v1/audit", params);
  const body = $("events").tBodies[0];
  if (!append) body.replaceChildren();
  body.append(...page.entries.map(eventRow));
  nextCursor = page.next_cursor;
  $("load-more").hidden = !nextCursor;
  $("events-summary").textContent = `${body.rows.length} event(s) shown${nextCursor ? ", more available" : ""}`;
}

async function searchEvents() {
  lastFilters = filterParams();
  await showEvents(lastFilters, false);
}

async function loadMore() {
  if (nextCursor) await showEvents([...lastFilters, ["cursor", nextCursor]], true);
}

// Every page of an admin API list (it pages with next_cursor, limit at most 1000).
async function listAll(path, key) {
  const items = [];
  let cursor = null;
  do {
    const page = await api(path, [["limit", "1000"], ...(cursor ? [["cursor", cursor]] : [])]);
    items.push(...page[key]);
    cursor = page.next_cursor;
  } while (cursor);
  return items;
}

// --- members: history and "as of" -----------------------------------------------------------------------
async function loadMembers() {
  const members = await listAll("/api/v1/members", "members");
  const label = (m) => `${m.user_name} (${m.status})`;
  $("member-select").replaceChildren(...members.map((m) => el("option", { value: m.id }, label(m))));
  $("member-ids").replaceChildren(...members.map((m) => el("option", { value: m.id }, m.user_name)));
}

function memberId() {
  const id = $("member-select").value;
  if (!id) throw new ApiError("Choose a member first.");
  return encodeURIComponent(id);
}

/** "at T by ACTOR (source, request R)" for an audit entry. */
function when(entry) {
  const actor = (entry.actor || {}).name || (entry.actor || {}).id || "?";
  return `at ${entry.recorded_at} by ${actor} (${entry.source}, request ${entry.request_id || "-"})`;
}

async function showHistory(cursor = null) {
  const id = memberId();
  const page = await api(`/api/v1/members/${id}/history`, cursor ? [["cursor", cursor]] : []);
  if (!cursor) {
    const more = el("button", { type: "button", id: "history-more" }, "Load more");
    more.addEventListener("click", () => attempt(() => showHistory(more.dataset.cursor)));
    const name = $("member-select").selectedOptions[0].textContent;
    $("member-view").replaceChildren(el("h3", {}, `History of ${name}`), el("ol", { id: "history" }), more);
  }
  const steps = page.entries.map((step) =>
    el(
      "li",
      { "data-position": String(step.position) },
      el("strong", {}, step.type),
      ` ${when(step)}`,
      fields(el("dl"), step.state),
    ),
  );
  $("history").append(...steps);
  $("history-more").dataset.cursor = page.next_cursor || "";
  $("history-more").hidden = !page.next_cursor;
}

async function showAsOf() {
  const id = memberId();
  const at = $("as-of").value.trim();
  if (!at) throw new ApiError("Enter a time (RFC 3339, e.g. 2026-03-01T00:00:00Z).");
  const asOf = [["as_of", at]];
  const [member, admins, seats] = await Promise.all([
    api(`/api/v1/members/${id}`, asOf),
    api("/api/v1/admins", asOf),
    api("/api/v1/seats", asOf),
  ]);
  const admin = (a) => el("li", {}, `${a.user_name} (${a.member_id}), made admin ${when(a.granted)}`);
  const holder = (h) => el("li", {}, `${h.user_name} (${h.member_id}), seat since ${h.assigned.recorded_at}`);
  const { total, assigned, available } = seats;
  $("member-view").replaceChildren(
    el("h3", {}, `As of ${member.as_of}`),
    fields(el("dl", { id: "as-of-member" }), member),
    el("h4", {}, "Admins"),
    el("ul", { id: "as-of-admins" }, ...admins.admins.map(admin)),
    el("h4", {}, "Seats"),
    fields(el("dl", { id: "as-of-seats" }), { total, assigned, available }),
    el("ul", { id: "as-of-seat-holders" }, ...seats.holders.map(holder)),
    el("p", {}, seats.next_cursor ? "More seat holders than shown here." : ""),
  );
}

// --- tokens ------------------------------------------------------------------------------------------------
async function loadTokens() {
  const tokens = await listAll("/api/v1/tokens", "tokens");
  $("token-list").tBodies[0].replaceChildren(
    ...tokens.map((t) => {
      const activity = el("button", { type: "button" }, "Activity");
      activity.addEventListener("click", () => attempt(() => tokenActivity(t.id)));
      const revoked = t.revoked_at ? `${t.revoked_at} by ${t.revoked_by}` : "";
      return el(
        "tr",
        { "data-token": t.id },
        el("td", { title: t.description || "" }, t.name),
        el("td", {}, t.status),
        el("td", {}, t.scopes.join(" ")),
        el("td", {}, `${t.created_at} by ${t.created_by}`),
        el("td", {}, t.last_used_at || "never"),
        el("td", {}, revoked),
        el("td", {}, activity),
      );
    }),
  );
}

/** Token activity is the timeline filtered by the token as actor. */
async function tokenActivity(tokenId) {
  $("filters").reset();
  $("filters").elements.namedItem("actor").value = tokenId;
  await searchEvents();
  $("timeline").scrollIntoView();
}

// --- verification -------------------------------------------------------------------------------------------
async function verify() {
  $("verify-status").textContent = "checking…";
  const [result, checkpoint, publicKey] = await Promise.all([
    api("/api/v1/audit/verify"),
    api("/api/v1/audit/checkpoint"),
    api("/api/v1/audit/public-key"),
  ]);
  const failed = result.reason === "no events" ? "no events yet" : `FAILED at position ${result.broken_at}`;
  $("verify-status").textContent = result.ok ? "OK" : failed;
  $("verify-status").className = result.ok ? "ok" : "bad";
  fields($("verify-details"), result);
  fields($("checkpoint"), checkpoint);
  fields($("public-key"), publicKey);
}

// --- wiring ---------------------------------------------------------------------------------------------------
function on(id, event, action) {
  $(id).addEventListener(event, (e) => {
    e.preventDefault();
    attempt(action);
  });
}

document.addEventListener("DOMContentLoaded", () => {
  on("sign-in-form", "submit", async () => {
    sessionStorage.setItem(KEY, $("admin-key").value.trim());
    $("admin-key").value = "";
    await signIn();
  });
  on("sign-out", "click", async () => signOut("Signed out."));
  on("filters", "submit", searchEvents);
  on("load-more", "click", loadMore);
  on("member-form", "submit", showHistory);
  on("as-of-show", "click", showAsOf);
  on("verify-again", "click", verify);
  if (sessionStorage.getItem(KEY)) attempt(signIn);
});
