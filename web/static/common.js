// Shared by the wall and the remote view: card rendering, the card list, relative times,
// the API client and the self-healing websocket.
//
// Security rule: post.html is the only string inserted as HTML (it is sanitised on the
// server with nh3). Everything else goes through textContent/setAttribute, and URLs are
// used only when they are http(s).

export const PLATFORM_LABELS = { mastodon: "Mastodon", bluesky: "Bluesky", blog: "Blog" };

/** The URL if it is http(s), else "" (no javascript:, data: or relative URLs). */
export function httpUrl(u) {
  if (typeof u !== "string" || !u) return "";
  const lower = u.toLowerCase();
  return lower.startsWith("http://") || lower.startsWith("https://") ? u : "";
}

function el(tag, className, attrs = {}) {
  const node = document.createElement(tag);
  if (className) node.className = className;
  for (const [name, value] of Object.entries(attrs)) node.setAttribute(name, String(value));
  return node;
}

function textEl(tag, className, text) {
  const node = el(tag, className);
  node.textContent = text;
  return node;
}

/**
 * Build a card for one post. Mirrors the `card` macro in templates/_post.html element for
 * element (a browser test compares the two), so a live card looks like a rendered one.
 */
export function renderCard(post, { mediaLimit = 4 } = {}) {
  const label = PLATFORM_LABELS[post.platform] ?? "Web";
  const author = post.author ?? {};
  const name = author.name || author.handle || "";
  const handle = author.handle || "";
  const card = el("article", "card", {
    "data-id": post.id,
    "data-platform": post.platform,
    "data-created": post.created_at ?? "",
    tabindex: "0",
    "aria-label": `${name} on ${label}`,
  });

  const head = el("header", "card-head");
  const avatar = httpUrl(author.avatar);
  head.append(
    avatar
      ? // `loading` before `src`: a detached <img> starts fetching as soon as src is set.
        el("img", "avatar", {
          width: 48, height: 48, loading: "lazy", decoding: "async",
          referrerpolicy: "no-referrer", alt: "", src: avatar,
        })
      : el("span", "avatar avatar-none"),
  );
  const who = el("span", "who");
  who.append(
    textEl("span", "name", name),
    textEl("span", "handle", !handle || handle.startsWith("@") ? handle : `@${handle}`),
  );
  const platform = el("span", `platform platform-${post.platform}`, { title: label });
  platform.append(
    el("span", "platform-icon", { "aria-hidden": "true" }),
    textEl("span", "platform-label", label),
  );
  head.append(who, platform);
  card.append(head);

  const body = renderBody(post, mediaLimit);
  if (post.spoiler_text || post.sensitive) {
    const details = el("details", "cw");
    const summary = el("summary", "cw-summary");
    summary.append(
      textEl("span", "cw-label", "Content warning"),
      textEl("span", "cw-text", post.spoiler_text || "Sensitive content"),
    );
    details.append(summary, body);
    card.append(details);
  } else {
    card.append(body);
  }

  const foot = el("footer", "card-foot");
  const created = post.created_at ?? "";
  const time = textEl("time", "", `${created.slice(0, 10)} ${created.slice(11, 16)}`);
  time.setAttribute("datetime", created);
  const permalink = httpUrl(post.url);
  const wrap = permalink
    ? el("a", "permalink", { href: permalink, rel: "noopener noreferrer" })
    : el("span", "permalink");
  wrap.append(time);
  foot.append(wrap);
  card.append(foot);
  return card;
}

function renderBody(post, mediaLimit) {
  const body = el("div", "card-body");
  const text = el("div", "text", post.language ? { lang: post.language } : {});
  text.innerHTML = post.html ?? ""; // sanitised server-side (nh3): the one trusted HTML field
  body.append(text);

  const shown = (post.media ?? []).filter((m) => httpUrl(m.preview_url || m.url));
  if (shown.length && mediaLimit) {
    const media = el("div", "media");
    for (const m of shown.slice(0, mediaLimit)) {
      const full = httpUrl(m.url);
      const item = full
        ? el("a", `media-item media-${m.type}`, { href: full, rel: "noopener noreferrer" })
        : el("span", `media-item media-${m.type}`);
      // A still image only, even for video/GIF: nothing plays by itself on the wall.
      item.append(
        el("img", "media-img", {
          loading: "lazy", decoding: "async", referrerpolicy: "no-referrer",
          src: httpUrl(m.preview_url || m.url), alt: m.alt ?? "",
        }),
      );
      if (m.type !== "image") {
        item.append(textEl("span", "media-badge", m.type === "video" ? "Video" : "GIF"));
      }
      media.append(item);
    }
    body.append(media);
  }

  const link = (post.links ?? []).find((l) => l && l.title);
  if (link) {
    const href = httpUrl(link.url);
    const box = href
      ? el("a", "link-card", { href, rel: "noopener noreferrer" })
      : el("span", "link-card");
    box.append(
      textEl("span", "link-title", link.title),
      textEl("span", "link-host", href ? href.split("/")[2] : ""),
    );
    body.append(box);
  }
  return body;
}

/**
 * A gone avatar or photo shows no broken-image icon: the avatar keeps its plain circle and
 * a photo falls back to its alt text (the wall hides it, see style.css).
 */
export function hideBrokenImages() {
  const broken = (img) => {
    img.dataset.broken = "";
    img.removeAttribute("src");
  };
  document.addEventListener(
    "error",
    (event) => {
      const img = event.target;
      if (img instanceof HTMLImageElement && img.closest(".card")) broken(img);
    },
    true, // "error" does not bubble; capture sees it for every image
  );
  // Server-rendered images may have failed before this module ran.
  for (const img of document.querySelectorAll(".card img[src]")) {
    if (img.complete && img.naturalWidth === 0) broken(img);
  }
}

// ---------------------------------------------------------------- relative times

const rtf = new Intl.RelativeTimeFormat(document.documentElement.lang || undefined, {
  numeric: "auto",
  style: "short",
});
const dateFormat = new Intl.DateTimeFormat(document.documentElement.lang || undefined, {
  day: "numeric",
  month: "short",
  hour: "2-digit",
  minute: "2-digit",
});

export function relativeTime(iso, now = Date.now()) {
  const then = Date.parse(iso);
  if (Number.isNaN(then)) return "";
  const seconds = Math.round((now - then) / 1000);
  if (seconds < 45) return "just now"; // also covers small clock skew into the future
  const minutes = Math.round(seconds / 60);
  if (minutes < 60) return rtf.format(-minutes, "minute");
  const hours = Math.round(minutes / 60);
  if (hours < 24) return rtf.format(-hours, "hour");
  return dateFormat.format(then);
}

export function updateTimes(root = document, now = Date.now()) {
  for (const time of root.querySelectorAll("time[datetime]")) {
    const text = relativeTime(time.getAttribute("datetime"), now);
    if (text && time.textContent !== text) time.textContent = text;
  }
}

/** Refresh every <time> now and every 30 s. */
export function startClock(root = document) {
  updateTimes(root);
  return setInterval(() => updateTimes(root), 30_000);
}

// ---------------------------------------------------------------- the card list

/**
 * The cards of one page, newest first, at most one per post id. Server-rendered cards are
 * adopted as they are; live posts are inserted by created_at so a late, older post lands
 * where a reload would put it.
 */
export class CardList {
  constructor(container, { mediaLimit = 4, max = Infinity, accept = () => true } = {}) {
    this.container = container;
    this.mediaLimit = mediaLimit;
    this.max = max;
    this.accept = accept;
    this.hasMore = false; // older pages exist that are not loaded: never append past them
    this.byId = new Map();
    for (const card of container.querySelectorAll(":scope > .card")) {
      if (!accept(cardFacts(card))) card.remove();
      else this.byId.set(card.dataset.id, card);
    }
    this.trim();
  }

  get size() {
    return this.byId.size;
  }

  has(id) {
    return this.byId.has(id);
  }

  /** Insert or replace; returns "added", "replaced", "removed" or "" (not shown). */
  upsert(post, { animate = false } = {}) {
    if (!post || typeof post.id !== "string") return "";
    const existing = this.byId.get(post.id);
    if (!this.accept(post)) {
      if (existing) this.remove([post.id]);
      return existing ? "removed" : "";
    }
    const card = renderCard(post, { mediaLimit: this.mediaLimit });
    updateTimes(card);
    if (existing) {
      keepState(existing, card);
      existing.replaceWith(card);
      this.byId.set(post.id, card);
      return "replaced";
    }
    if (!this.insertSorted(card)) return "";
    this.byId.set(post.id, card);
    if (animate) card.classList.add("card-enter");
    this.trim();
    return this.byId.has(post.id) ? "added" : "";
  }

  /** Replace a shown post in place; posts not shown are left alone. */
  update(post) {
    return post && this.byId.has(post.id) ? this.upsert(post) : "";
  }

  insertSorted(card) {
    const created = card.dataset.created;
    for (const other of this.container.children) {
      if (other.classList.contains("card") && other.dataset.created < created) {
        this.container.insertBefore(card, other);
        return true;
      }
    }
    if (this.hasMore) return false; // it belongs to a page not loaded yet
    this.container.append(card);
    return true;
  }

  /** Append an older page (infinite scroll). */
  appendPage(posts) {
    const fragment = document.createDocumentFragment();
    for (const post of posts) {
      if (this.byId.has(post.id)) {
        this.upsert(post);
        continue;
      }
      if (!this.accept(post)) continue;
      const card = renderCard(post, { mediaLimit: this.mediaLimit });
      updateTimes(card);
      this.byId.set(post.id, card);
      fragment.append(card);
    }
    this.container.append(fragment);
  }

  replaceAll(posts) {
    this.byId.clear();
    this.container.replaceChildren();
    this.appendPage(posts);
    this.trim();
  }

  remove(ids) {
    let removed = 0;
    for (const id of ids ?? []) {
      const card = this.byId.get(id);
      if (!card) continue;
      if (card.contains(document.activeElement)) {
        // Keep keyboard users in the list rather than dropping focus to <body>.
        (card.nextElementSibling ?? card.previousElementSibling ?? this.container).focus({
          preventScroll: true,
        });
      }
      card.remove();
      this.byId.delete(id);
      removed += 1;
    }
    return removed;
  }

  /** Bound the DOM: drop the oldest cards beyond `max`. */
  trim() {
    while (this.byId.size > this.max) {
      const last = this.container.lastElementChild;
      if (!last) break;
      this.byId.delete(last.dataset.id);
      last.remove();
    }
  }
}

/** The fields a filter looks at, read back from a server-rendered card. */
function cardFacts(card) {
  return {
    id: card.dataset.id,
    platform: card.dataset.platform,
    media: card.querySelector(".media") ? [{}] : [],
    text: card.querySelector(".text")?.textContent ?? "",
    author: {
      name: card.querySelector(".name")?.textContent ?? "",
      handle: card.querySelector(".handle")?.textContent ?? "",
    },
  };
}

function keepState(oldCard, newCard) {
  // A reader who opened a content warning should not see it snap shut on an edit.
  const wasOpen = oldCard.querySelector("details.cw")?.open;
  const details = newCard.querySelector("details.cw");
  if (wasOpen && details) details.open = true;
  if (oldCard === document.activeElement) queueMicrotask(() => newCard.focus({ preventScroll: true }));
}

// ---------------------------------------------------------------- API

export async function fetchPosts(api, params) {
  const url = new URL(api, location.href);
  for (const [key, value] of Object.entries(params)) {
    if (value !== "" && value != null) url.searchParams.set(key, String(value));
  }
  const response = await fetch(url, { headers: { Accept: "application/json" } });
  if (!response.ok) throw new Error(`GET ${url.pathname}: HTTP ${response.status}`);
  return response.json();
}

// ---------------------------------------------------------------- connection state

const STATE_LABELS = { connecting: "connecting", live: "live", reconnecting: "reconnecting" };

export function showConnState(state) {
  for (const node of document.querySelectorAll(".conn")) {
    node.dataset.state = state;
    const label = node.querySelector(".conn-label");
    if (label) label.textContent = STATE_LABELS[state] ?? state;
  }
}

// ---------------------------------------------------------------- the live stream

const BACKOFF_MIN_MS = 1000;
const BACKOFF_MAX_MS = 30_000;
const STABLE_MS = 5000; // a connection that lasted this long resets the backoff

/**
 * The websocket to /ws, resumed with `hello` + the last cursor after every reconnect so
 * no post is missed. Reconnects with exponential backoff and jitter (so a restarted
 * server is not hit by every screen at once). After a `resync` the cursor is dropped and
 * `onReset` re-reads the list from the API once the new connection is open.
 */
export class LiveStream {
  constructor({ path, cursor, onMessage, onReset = () => {}, onState = showConnState }) {
    this.url = new URL(path, location.href);
    this.url.protocol = this.url.protocol === "https:" ? "wss:" : "ws:";
    this.cursor = cursor ?? "";
    this.onMessage = onMessage;
    this.onReset = onReset;
    this.onState = onState;
    this.attempt = 0;
    this.ws = null;
    this.timer = null;
    this.stableTimer = null;
    this.everLive = false;
    this.immediate = false;
  }

  start() {
    this.connect();
    // Coming back online or to a hidden tab: do not sit out the rest of a long backoff.
    addEventListener("online", () => this.kick());
    document.addEventListener("visibilitychange", () => {
      if (document.visibilityState === "visible") this.kick();
    });
  }

  kick() {
    if (this.ws || this.timer === null) return;
    clearTimeout(this.timer);
    this.timer = null;
    this.connect();
  }

  connect() {
    this.onState(this.everLive ? "reconnecting" : "connecting");
    let ws;
    try {
      ws = new WebSocket(this.url);
    } catch (error) {
      console.error("backchannel: websocket", error);
      this.schedule();
      return;
    }
    this.ws = ws;
    ws.addEventListener("open", () => {
      ws.send(JSON.stringify({ type: "hello", after: this.cursor }));
      this.everLive = true;
      this.onState("live");
      this.stableTimer = setTimeout(() => (this.attempt = 0), STABLE_MS);
      // Without a cursor this connection only brings new posts: re-read the list so
      // nothing that happened while we were away is missing.
      if (this.cursor === "") this.onReset();
    });
    ws.addEventListener("message", (event) => this.receive(ws, event.data));
    ws.addEventListener("close", (event) => {
      if (this.ws !== ws) return;
      this.ws = null;
      clearTimeout(this.stableTimer);
      if (event.code === 4000) this.cursor = ""; // the server's "resync" close
      this.schedule();
    });
  }

  receive(ws, data) {
    let msg;
    try {
      msg = JSON.parse(data);
    } catch {
      return;
    }
    if (!msg || typeof msg !== "object") return;
    if (msg.type === "resync") {
      this.cursor = "";
      this.immediate = true;
      ws.close();
      return;
    }
    try {
      this.onMessage(msg);
    } catch (error) {
      // One bad message must not stop the wall.
      console.error("backchannel: message", msg.type, error);
    }
    if (typeof msg.cursor === "string" && msg.cursor) this.cursor = msg.cursor;
  }

  schedule() {
    this.onState("reconnecting");
    let delay = 0;
    if (!this.immediate) {
      const base = BACKOFF_MIN_MS * 2 ** Math.min(this.attempt, 10);
      delay = Math.min(BACKOFF_MAX_MS, base * (0.75 + Math.random() * 0.5)); // ±25 % jitter
      this.attempt += 1;
    }
    this.immediate = false;
    this.timer = setTimeout(() => {
      this.timer = null;
      this.connect();
    }, delay);
  }
}
