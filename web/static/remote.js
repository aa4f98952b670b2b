// `/`: the remote attendee view. Newest first; a reader who has scrolled down is never
// moved: new posts wait behind a "N new posts" button. Older posts load as the reader
// nears the end of the list. Filters re-read the list from the API and live in the URL.
// common.js is imported by its versioned URL (given by the page) rather than "./common.js",
// so that after a deploy a long-open page never pairs a new script with a cached old one.
const { CardList, LiveStream, fetchPosts, hideBrokenImages, renderCard, startClock } =
  await import(document.body.dataset.common);
const { showAnnouncement, showPinned } = await import(document.body.dataset.banner);

const PAGE = 40;
const NEAR_TOP_PX = 120;
const ANNOUNCE_DELAY_MS = 1500;

const body = document.body;
const form = document.getElementById("filters");
const pill = document.getElementById("new-pill");
const more = document.getElementById("more");
const moreButton = document.getElementById("more-button");
const moreStatus = document.getElementById("more-status");
const announcer = document.getElementById("announcer");
const feed = document.getElementById("cards");

// ---------------------------------------------------------------- filters

function readForm() {
  return {
    platform: form.elements.platform.value,
    media: form.elements.media.checked ? "1" : "",
    q: form.elements.q.value.trim(),
  };
}

function writeForm(params) {
  const platform = params.get("platform") ?? "";
  if ([...form.elements.platform.options].some((o) => o.value === platform)) {
    form.elements.platform.value = platform;
  }
  form.elements.media.checked = params.get("media") === "1";
  form.elements.q.value = params.get("q") ?? "";
}

let filters = { platform: "", media: "", q: "" };

/** Client-side twin of the API filters, for live posts (q: every word, anywhere). */
function matches(post) {
  if (filters.platform && post.platform !== filters.platform) return false;
  if (filters.media && !(post.media?.length > 0)) return false;
  if (filters.q) {
    const haystack = [post.text, post.author?.name, post.author?.handle].join(" ").toLowerCase();
    return filters.q.toLowerCase().split(/\s+/).every((word) => haystack.includes(word));
  }
  return true;
}

const list = new CardList(feed, { mediaLimit: 4, accept: (post) => matches(post) });
let next = body.dataset.next ?? "";
list.hasMore = Boolean(next);

// ---------------------------------------------------------------- new posts

const pending = new Map(); // id -> post, held while the reader is scrolled down
let unannounced = 0;
let announceTimer = null;

function nearTop() {
  return window.scrollY < NEAR_TOP_PX;
}

function updatePill() {
  pill.hidden = pending.size === 0;
  pill.querySelector(".new-count").textContent = String(pending.size);
  pill.querySelector(".new-label").textContent = pending.size === 1 ? "new post" : "new posts";
}

function announce(count) {
  // One polite summary per burst, not one interruption per post.
  unannounced += count;
  clearTimeout(announceTimer);
  announceTimer = setTimeout(() => {
    const n = unannounced;
    unannounced = 0;
    if (!n) return;
    const noun = n === 1 ? "new post" : "new posts";
    announcer.textContent = pending.size
      ? `${n} ${noun}. Use the new posts button at the top to show them.`
      : `${n} ${noun}.`;
  }, ANNOUNCE_DELAY_MS);
}

function reveal({ focus = false } = {}) {
  if (!pending.size) return;
  for (const post of pending.values()) list.upsert(post, { animate: true });
  pending.clear();
  updatePill();
  if (focus) {
    const reduce = matchMedia("(prefers-reduced-motion: reduce)").matches;
    window.scrollTo({ top: 0, behavior: reduce ? "auto" : "smooth" });
    feed.querySelector(".card")?.focus({ preventScroll: true });
  }
}

pill.addEventListener("click", () => reveal({ focus: true }));

let scrollQueued = false;
addEventListener(
  "scroll",
  () => {
    if (scrollQueued) return;
    scrollQueued = true;
    requestAnimationFrame(() => {
      scrollQueued = false;
      if (nearTop()) reveal(); // the reader came back up by themselves
    });
  },
  { passive: true },
);

// ---------------------------------------------------------------- live messages

let held = null; // messages that arrive while the list is re-read, replayed on top

function handle(msg) {
  if (held) {
    held.push(msg);
    return;
  }
  switch (msg.type) {
    case "posts": {
      let fresh = 0;
      for (const post of msg.posts ?? []) {
        if (!post || typeof post.id !== "string") continue;
        if (list.has(post.id)) list.upsert(post); // replace in place, never duplicate
        else if (pending.has(post.id)) pending.set(post.id, post);
        else if (!matches(post)) continue;
        else if (nearTop()) fresh += list.upsert(post, { animate: true }) === "added" ? 1 : 0;
        else {
          pending.set(post.id, post);
          fresh += 1;
        }
      }
      updatePill();
      if (fresh) announce(fresh);
      break;
    }
    case "update":
      if (msg.post && pending.has(msg.post.id)) pending.set(msg.post.id, msg.post);
      else list.update(msg.post);
      break;
    case "retract":
      for (const id of msg.ids ?? []) pending.delete(id);
      list.remove(msg.ids);
      updatePill();
      break;
    case "pin":
      showPinned(msg.post, renderCard);
      break;
    case "announce":
      showAnnouncement(msg.text);
      break;
    default:
      break; // future types
  }
}

// ---------------------------------------------------------------- loading pages

let generation = 0; // a newer reload makes older responses stale
let loadingOlder = false;

function setNext(value) {
  next = value ?? "";
  list.hasMore = Boolean(next);
  moreButton.hidden = !next;
  if (!next && !loadingOlder) moreStatus.textContent = list.size ? "No older posts." : "";
}

async function reload() {
  const mine = ++generation;
  held ??= [];
  feed.setAttribute("aria-busy", "true");
  try {
    const page = await fetchPosts(body.dataset.api, { limit: PAGE, ...filters });
    if (mine !== generation) return;
    pending.clear();
    list.replaceAll(page.posts ?? []);
    moreStatus.textContent = "";
    setNext(page.next);
    updatePill();
  } catch (error) {
    console.error("backchannel: reload", error);
    if (mine !== generation) return;
    moreStatus.textContent = "Could not load posts.";
  }
  feed.removeAttribute("aria-busy");
  const replay = held;
  held = null;
  replay.forEach(handle);
}

async function loadOlder() {
  if (!next || loadingOlder) return;
  loadingOlder = true;
  const mine = generation;
  moreStatus.textContent = "Loading older posts…";
  try {
    const page = await fetchPosts(body.dataset.api, { before: next, limit: PAGE, ...filters });
    if (mine !== generation) return;
    list.appendPage(page.posts ?? []);
    moreStatus.textContent = "";
    loadingOlder = false;
    setNext(page.next);
  } catch (error) {
    console.error("backchannel: older posts", error);
    moreStatus.textContent = "Could not load older posts.";
  } finally {
    loadingOlder = false;
  }
  // The observer only fires on changes: if the end of the list is still in view (a tall
  // screen, a short page), keep going.
  if (next && mine === generation && isNearViewport(more)) loadOlder();
}

function isNearViewport(node) {
  return node.getBoundingClientRect().top < innerHeight + 600;
}

moreButton.addEventListener("click", loadOlder);
new IntersectionObserver((entries) => entries.some((e) => e.isIntersecting) && loadOlder(), {
  rootMargin: "0px 0px 600px 0px",
}).observe(more);

// ---------------------------------------------------------------- filter form

let searchTimer = null;

function applyFilters() {
  filters = readForm();
  const url = new URL(location.href);
  for (const [key, value] of Object.entries(filters)) {
    if (value) url.searchParams.set(key, value);
    else url.searchParams.delete(key);
  }
  history.replaceState(null, "", url); // a reload or a shared link keeps the filters
  reload();
}

form.addEventListener("submit", (event) => {
  event.preventDefault();
  clearTimeout(searchTimer);
  applyFilters();
});
form.addEventListener("change", (event) => {
  if (event.target.name !== "q") applyFilters();
});
form.elements.q.addEventListener("input", () => {
  clearTimeout(searchTimer);
  searchTimer = setTimeout(applyFilters, 350);
});

// ---------------------------------------------------------------- start

writeForm(new URLSearchParams(location.search));
filters = readForm();
// The server rendered the unfiltered newest page; filters from the URL need their own.
if (filters.platform || filters.media || filters.q) reload();
setNext(next);
updatePill();
hideBrokenImages();
startClock(document);
new LiveStream({
  path: body.dataset.ws,
  cursor: body.dataset.cursor,
  onMessage: handle,
  onReset: reload,
}).start();
