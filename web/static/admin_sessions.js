// The session grid on the admin page: rooms across, start times down, one cell per
// session; a form adds or edits one. Everything goes in through textContent.
// Also the list of sessions that each post's "Session" select offers.

let sessions = [];
const listeners = [];

export function currentSessions() {
  return sessions;
}

export function onSessionsChanged(fn) {
  listeners.push(fn);
}

function local(iso) {
  // The event's wall-clock time as the server gave it (offset kept off the input).
  return typeof iso === "string" ? iso.slice(0, 16) : "";
}

function cellText(s) {
  const leaders = (s.leaders || []).filter((x) => !x.startsWith("@")).join(", ");
  return leaders ? `${s.title} — ${leaders}` : s.title;
}

function renderGrid(grid, fill) {
  const rooms = [...new Set(sessions.map((s) => s.room || "—"))].sort();
  const starts = [...new Set(sessions.map((s) => local(s.start)))].sort();
  const table = document.createElement("table");
  table.className = "session-grid";
  const head = table.createTHead().insertRow();
  head.append(Object.assign(document.createElement("th"), { textContent: "" }));
  for (const room of rooms) head.append(Object.assign(document.createElement("th"), { textContent: room }));
  const tbody = table.createTBody();
  for (const start of starts) {
    const row = tbody.insertRow();
    row.append(Object.assign(document.createElement("th"), { textContent: start.slice(11) || start }));
    for (const room of rooms) {
      const cell = row.insertCell();
      for (const s of sessions.filter((x) => local(x.start) === start && (x.room || "—") === room)) {
        const b = document.createElement("button");
        b.type = "button";
        b.className = "session-cell";
        b.dataset.id = s.id;
        b.textContent = cellText(s) + (s.hashtag ? ` #${s.hashtag}` : "");
        b.addEventListener("click", () => fill(s));
        cell.append(b);
      }
    }
  }
  grid.replaceChildren(table);
}

export function startSessionGrid(api, status) {
  const form = document.getElementById("session-form");
  const grid = document.getElementById("session-grid");
  if (!form || !grid) return;
  const field = (name) => form.elements.namedItem(name);
  const fill = (s) => {
    field("id").value = s ? s.id : "";
    field("title").value = s ? s.title : "";
    field("room").value = s ? s.room : "";
    field("start").value = s ? local(s.start) : "";
    field("end").value = s ? local(s.end) : "";
    field("leaders").value = s ? (s.leaders || []).join(", ") : "";
    field("hashtag").value = s && s.hashtag ? `#${s.hashtag}` : "";
    form.querySelector(".session-delete").hidden = !s;
  };
  const load = async () => {
    const data = await api("GET", "/api/admin/sessions");
    sessions = data.sessions || [];
    renderGrid(grid, fill);
    for (const fn of listeners) fn(sessions);
  };
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    const id = field("id").value;
    const body = {
      title: field("title").value,
      room: field("room").value,
      start: field("start").value,
      end: field("end").value,
      leaders: field("leaders").value,
      hashtag: field("hashtag").value,
    };
    const request = id ? api("PUT", `/api/admin/sessions/${encodeURIComponent(id)}`, body) : api("POST", "/api/admin/sessions", body);
    request
      .then(() => {
        status.textContent = "Session saved";
        fill(null);
        return load();
      })
      .catch((error) => (status.textContent = error.message));
  });
  form.querySelector(".session-new").addEventListener("click", () => fill(null));
  form.querySelector(".session-delete").addEventListener("click", () => {
    const id = field("id").value;
    if (!id) return;
    api("DELETE", `/api/admin/sessions/${encodeURIComponent(id)}`)
      .then(() => {
        fill(null);
        return load();
      })
      .catch((error) => (status.textContent = error.message));
  });
  fill(null);
  load().catch((error) => (status.textContent = error.message));
  return load;
}

// A select for one post: automatic, general, or a session; sends the "assign" action.
export function sessionSelect(post, act) {
  const select = document.createElement("select");
  select.className = "session-select";
  select.setAttribute("aria-label", "Session");
  const options = [["", "Session: automatic"], ["general", "General (no session)"]];
  for (const s of sessions) options.push([s.id, `${local(s.start).slice(11)} ${s.title}`]);
  for (const [value, label] of options) {
    const option = document.createElement("option");
    option.value = value;
    option.textContent = label;
    select.append(option);
  }
  select.value = post.session && options.some(([v]) => v === post.session) ? post.session : "";
  select.addEventListener("change", () => act("assign", { post: post.id, session: select.value }));
  return select;
}
