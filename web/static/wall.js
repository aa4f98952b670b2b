// /wall: the projector view. Options come from the URL only (no settings UI):
//   ?theme=light  ?columns=N  ?media=0  ?platform=mastodon|bluesky|blog
// common.js is imported by its versioned URL (given by the page) rather than "./common.js",
// so that after a deploy a long-running wall never pairs a new script with a cached old one.
const { CardList, LiveStream, fetchPosts, hideBrokenImages, renderCard, startClock } =
  await import(document.body.dataset.common);
const { showAnnouncement, showPinned, startNowBanner, refreshNowBanner } = await import(
  document.body.dataset.banner
);

const MAX_CARDS = 60; // keeps the DOM (and a week-long wall's memory) bounded
const PLATFORMS = ["mastodon", "bluesky", "blog"];

const body = document.body;
const params = new URLSearchParams(location.search);

if (params.get("theme") === "light") body.classList.add("theme-light");
if (params.get("media") === "0") body.classList.add("hide-media");
const columns = Number.parseInt(params.get("columns") ?? "", 10);
if (columns >= 1 && columns <= 12) {
  body.classList.add("fixed-columns");
  // Setting a custom property through the CSSOM is allowed by the CSP (style-src 'self'
  // only forbids inline style attributes and <style> elements).
  body.style.setProperty("--columns", String(columns));
}
const platform = PLATFORMS.includes(params.get("platform")) ? params.get("platform") : "";

const cards = document.getElementById("cards");
const list = new CardList(cards, {
  mediaLimit: 1,
  max: MAX_CARDS,
  accept: (post) => !platform || post.platform === platform,
});

/** Balance the columns only while every card fits on screen (see style.css). */
function fitColumns() {
  cards.classList.remove("fits");
  if (cards.scrollWidth <= cards.clientWidth + 1) cards.classList.add("fits");
}

// Live messages that arrive while the list is being re-read are held and replayed on top.
let held = null;
let generation = 0;

async function reload() {
  const mine = ++generation;
  held ??= [];
  try {
    const page = await fetchPosts(body.dataset.api, { limit: 40, platform });
    if (mine !== generation) return;
    list.replaceAll(page.posts ?? []);
    fitColumns();
  } catch (error) {
    console.error("backchannel: reload", error);
    if (mine !== generation) return;
  }
  const replay = held;
  held = null;
  replay.forEach(handle);
}

function handle(msg) {
  if (held) {
    held.push(msg);
    return;
  }
  switch (msg.type) {
    case "posts":
      for (const post of msg.posts ?? []) list.upsert(post, { animate: true });
      break;
    case "update":
      list.update(msg.post);
      break;
    case "retract":
      list.remove(msg.ids);
      break;
    case "pin":
      showPinned(msg.post, renderCard, { mediaLimit: 1 });
      return;
    case "announce":
      showAnnouncement(msg.text);
      return;
    case "sessions":
      refreshNowBanner();
      return;
    default:
      return; // future types
  }
  if (msg.type === "posts") lastPost = Date.now();
  clearSpotlight();
  fitColumns();
}

// "Shuffle when quiet" (?shuffle=1, ?quiet=SECONDS): when nothing new has arrived for a
// while, bring back an earlier post in a spotlight above the list, one at a time.
const shuffle = params.get("shuffle") === "1";
const quietMs = Math.max(30, Number.parseInt(params.get("quiet") ?? "120", 10) || 120) * 1000;
let lastPost = Date.now();
const spotlight = document.getElementById("spotlight");

function clearSpotlight() {
  if (!spotlight || spotlight.hidden) return;
  spotlight.hidden = true;
  spotlight.querySelector(".spotlight-card").replaceChildren();
}

function spotlightEarlier() {
  if (!shuffle || !spotlight || Date.now() - lastPost < quietMs) return;
  const earlier = [...cards.children].slice(6); // not the ones everybody just read
  if (earlier.length === 0) return;
  const pick = earlier[Math.floor(Math.random() * earlier.length)];
  const copy = pick.cloneNode(true);
  copy.removeAttribute("id");
  spotlight.querySelector(".spotlight-card").replaceChildren(copy);
  spotlight.hidden = false;
}
setInterval(spotlightEarlier, 20_000);

// The server renders the unfiltered newest page; a platform filter needs its own page.
if (platform) reload();
fitColumns();
addEventListener("resize", fitColumns);
hideBrokenImages();
startClock(document);
startNowBanner();
new LiveStream({
  path: body.dataset.ws,
  cursor: body.dataset.cursor,
  onMessage: handle,
  onReset: reload,
}).start();
