// The moderation screen. Every user-controlled string goes in through textContent; only
// post.html (sanitised on the server) is inserted as HTML, by renderCard.
import { LiveStream, renderCard, startClock, hideBrokenImages } from "./common.js";
import { onSessionsChanged, sessionSelect, startSessionGrid } from "./admin_sessions.js";

const body = document.body;
const csrf = body.dataset.csrf;
const queue = document.getElementById("queue");
const items = new Map(); // post id -> <li>
const posts = new Map(); // post id -> post, to re-render when the mode changes
let selected = null;
let mode = "post";

// The server says pending for every unapproved post; under post-moderation those are live.
function stateOf(m) {
  if (m.hidden) return "hidden";
  if (m.approved) return "visible";
  return mode === "pre" ? "pending" : "live";
}

async function api(method, path, data) {
  const response = await fetch(path, {
    method,
    credentials: "same-origin",
    headers: { "Content-Type": "application/json", "X-CSRF-Token": csrf },
    body: data === undefined ? undefined : JSON.stringify(data),
  });
  const result = await response.json().catch(() => ({}));
  if (!response.ok) throw new Error(result.error || `HTTP ${response.status}`);
  return result;
}

function act(action, fields) {
  return api("POST", "/api/admin/actions", { action, ...fields })
    .then(refreshSide)
    .catch((error) => alertLine(error.message));
}

function alertLine(text) {
  const status = document.getElementById("rules-status");
  status.textContent = text;
}

function button(label, onClick, key) {
  const b = document.createElement("button");
  b.type = "button";
  b.textContent = label;
  if (key) b.setAttribute("aria-keyshortcuts", key);
  b.addEventListener("click", onClick);
  return b;
}

function domainOf(handle) {
  const bare = (handle || "").replace(/^@/, "");
  return bare.includes("@") ? bare.split("@").pop() : bare;
}

function renderItem(post) {
  const m = post.moderation || {};
  const state = stateOf(m);
  const li = document.createElement("li");
  li.className = `admin-item state-${state}`;
  li.dataset.id = post.id;
  li.tabIndex = -1;
  const tools = document.createElement("div");
  tools.className = "admin-tools";
  const badge = document.createElement("span");
  badge.className = `admin-badge ${state}`;
  badge.textContent = m.pinned ? `${state} · pinned` : state;
  tools.append(badge);
  if (m.rule) {
    const rule = document.createElement("span");
    rule.className = "admin-rule";
    rule.textContent = `rule: ${m.rule}`;
    tools.append(rule);
  }
  const id = post.id;
  if (state === "pending" || state === "hidden") {
    tools.append(button("Approve", () => act("approve", { post: id }), "a"));
  }
  if (state === "hidden") tools.append(button("Unhide", () => act("unhide", { post: id }), "u"));
  else tools.append(button("Hide", () => act("hide", { post: id }), "h"));
  tools.append(button("Ban author", () => act("ban", { author: post.author.handle }), "b"));
  tools.append(button("Ban domain", () => act("ban", { domain: domainOf(post.author.handle) })));
  if (m.pinned) tools.append(button("Unpin", () => act("unpin", { post: id })));
  else tools.append(button("Pin", () => act("pin", { post: id }), "p"));
  tools.append(sessionSelect(post, act));
  li.append(tools, renderCard(post, { mediaLimit: 1 }));
  return li;
}

function upsert(post, { prepend = true } = {}) {
  posts.set(post.id, post);
  const fresh = renderItem(post);
  const old = items.get(post.id);
  if (old) {
    if (old === selected) {
      fresh.setAttribute("aria-selected", "true");
      selected = fresh;
    }
    old.replaceWith(fresh);
  } else if (prepend) {
    queue.prepend(fresh);
  } else {
    queue.append(fresh);
  }
  items.set(post.id, fresh);
  while (items.size > 300) {
    const last = queue.lastElementChild;
    if (!last) break;
    items.delete(last.dataset.id);
    posts.delete(last.dataset.id);
    last.remove();
  }
}

function remove(id) {
  const li = items.get(id);
  if (li) {
    li.remove();
    items.delete(id);
  }
  posts.delete(id);
}

function select(li) {
  if (selected) selected.removeAttribute("aria-selected");
  selected = li;
  if (li) {
    li.setAttribute("aria-selected", "true");
    li.focus();
    li.scrollIntoView({ block: "nearest" });
  }
}

document.addEventListener("keydown", (event) => {
  const typing = "textarea, select, input:not([type=radio]):not([type=checkbox])";
  if (event.target.closest(typing) || event.ctrlKey || event.metaKey || event.altKey) return;
  const key = event.key;
  if (key === "?") {
    const help = document.getElementById("help");
    help.hidden = !help.hidden;
    return;
  }
  if (key === "j") return select(selected ? selected.nextElementSibling || selected : queue.firstElementChild);
  if (key === "k") return select(selected ? selected.previousElementSibling || selected : queue.firstElementChild);
  if (!selected) return;
  const shortcut = [...selected.querySelectorAll("button[aria-keyshortcuts]")].find(
    (b) => b.getAttribute("aria-keyshortcuts") === key,
  );
  if (shortcut) shortcut.click();
});

function applySettings(settings) {
  if (settings.moderation !== mode) {
    mode = settings.moderation;
    for (const post of posts.values()) upsert(post);
  }
  for (const radio of document.querySelectorAll('input[name="moderation"]')) {
    radio.checked = radio.value === settings.moderation;
  }
  document.getElementById("remote_shows_unmoderated").checked = !!settings.remote_shows_unmoderated;
  document.getElementById("paused").checked = !!settings.paused;
  document.getElementById("announcement").value = settings.announcement || "";
  const rules = settings.rules || {};
  document.getElementById("blocklist").value = (rules.blocklist || []).join("\n");
  document.getElementById("allowlist").value = (rules.allowlist || []).join("\n");
  document.getElementById("languages").value = (rules.languages || []).join(", ");
  document.getElementById("media").value = rules.media || "any";
  for (const box of document.querySelectorAll("input[data-rule]")) {
    const value = rules[box.dataset.rule];
    box.checked = value === undefined ? ["profanity", "hide_bots", "honour_noindex"].includes(box.dataset.rule) : !!value;
  }
}

function putSettings(values) {
  return api("PUT", "/api/admin/settings", values)
    .then((settings) => {
      applySettings(settings);
      alertLine("Saved.");
    })
    .catch((error) => alertLine(error.message));
}

for (const radio of document.querySelectorAll('input[name="moderation"]')) {
  radio.addEventListener("change", () => putSettings({ moderation: radio.value }));
}
for (const id of ["remote_shows_unmoderated", "paused"]) {
  document.getElementById(id).addEventListener("change", (event) => putSettings({ [id]: event.target.checked }));
}
document.getElementById("announce-form").addEventListener("submit", (event) => {
  event.preventDefault();
  act("announce", { text: document.getElementById("announcement").value });
});
document.getElementById("announce-clear").addEventListener("click", () => {
  document.getElementById("announcement").value = "";
  act("announce", { text: "" });
});
document.getElementById("ban-domain-form").addEventListener("submit", (event) => {
  event.preventDefault();
  const input = document.getElementById("ban-domain");
  if (input.value.trim()) act("ban", { domain: input.value.trim() });
  input.value = "";
});
document.getElementById("rules-form").addEventListener("submit", (event) => {
  event.preventDefault();
  const lines = (id) => document.getElementById(id).value.split("\n").map((s) => s.trim()).filter(Boolean);
  const rules = {
    blocklist: lines("blocklist"),
    allowlist: lines("allowlist"),
    languages: document.getElementById("languages").value.split(",").map((s) => s.trim()).filter(Boolean),
    media: document.getElementById("media").value,
  };
  for (const box of document.querySelectorAll("input[data-rule]")) rules[box.dataset.rule] = box.checked;
  putSettings({ rules });
});

function listInto(id, rows, render) {
  const list = document.getElementById(id);
  list.replaceChildren(...rows.map(render));
}

async function refreshSide() {
  const [hidden, bans, audit] = await Promise.all([
    api("GET", "/api/admin/hidden"),
    api("GET", "/api/admin/bans"),
    api("GET", "/api/admin/audit"),
  ]);
  listInto("hidden", hidden.posts, (post) => {
    const li = document.createElement("li");
    const text = document.createElement("span");
    text.textContent = `${post.author.handle}: ${post.text.slice(0, 80)} (${post.moderation.rule || post.moderation.by || "hidden"}) `;
    li.append(text, button("Unhide", () => act("unhide", { post: post.id })));
    return li;
  });
  listInto("bans", bans.bans, (ban) => {
    const li = document.createElement("li");
    const text = document.createElement("span");
    text.textContent = `${ban.kind} ${ban.value} `;
    li.append(text, button("Unban", () => act("unban", { [ban.kind]: ban.value })));
    return li;
  });
  listInto("audit", audit.entries.slice(0, 50), (entry) => {
    const li = document.createElement("li");
    li.textContent = `${entry.at} ${entry.actor} ${entry.action} ${entry.target}`;
    return li;
  });
}

async function reload() {
  const [settings, page] = await Promise.all([api("GET", "/api/admin/settings"), api("GET", "/api/admin/queue")]);
  applySettings(settings);
  queue.replaceChildren();
  items.clear();
  for (const post of page.posts) upsert(post, { prepend: false });
  await refreshSide();
}

new LiveStream({
  path: "/ws?view=admin",
  cursor: "",
  onReset: () => reload().catch((error) => alertLine(error.message)),
  onMessage: (msg) => {
    if (msg.type === "posts") for (const post of msg.posts) upsert(post);
    else if (msg.type === "update") upsert(msg.post);
    else if (msg.type === "retract") for (const id of msg.ids) remove(id);
    else if (msg.type === "settings") applySettings(msg.settings);
    else if (msg.type === "sessions") reloadSessions?.();
  },
}).start();
const reloadSessions = startSessionGrid(api, document.getElementById("session-status"));
// The selects on every post list the sessions: rebuild them when the grid changes.
onSessionsChanged(() => {
  for (const post of posts.values()) upsert(post);
});
startClock();
hideBrokenImages();
