// Organiser messages on the wall and the remote view: the announcement banner and the
// pinned post. Text goes in through textContent; the pinned card is built by renderCard.

export function showAnnouncement(text) {
  const banner = document.getElementById("announce");
  if (!banner) return;
  const value = typeof text === "string" ? text.trim() : "";
  banner.querySelector(".announce-text").textContent = value;
  banner.hidden = value === "";
}

export function showPinned(post, renderCard, options = {}) {
  const slot = document.getElementById("pinned");
  if (!slot) return;
  const holder = slot.querySelector(".pinned-card");
  if (!post || typeof post !== "object" || typeof post.id !== "string") {
    holder.replaceChildren();
    slot.hidden = true;
    return;
  }
  holder.replaceChildren(renderCard(post, options));
  slot.hidden = false;
}

let refresh = null;

// An organiser edited the session grid (a "sessions" message): show the change at once.
export function refreshNowBanner() {
  if (refresh) refresh();
}

// "Now": the sessions running at this moment, from the schedule (/api/sessions).
export async function startNowBanner() {
  const slot = document.getElementById("now");
  if (!slot) return;
  let sessions = [];
  const load = async () => {
    try {
      const response = await fetch("/api/sessions");
      if (response.ok) sessions = (await response.json()).sessions ?? [];
    } catch {
      // keep the last schedule we had
    }
  };
  const show = () => {
    const now = Date.now();
    const running = sessions.filter((s) => Date.parse(s.start) <= now && now < Date.parse(s.end));
    const text = running.map((s) => (s.room ? `${s.title} (${s.room})` : s.title)).join(" · ");
    slot.querySelector(".now-text").textContent = text;
    slot.hidden = text === "";
  };
  refresh = () => load().then(show);
  await load();
  show();
  setInterval(show, 30_000);
  setInterval(() => load().then(show), 300_000);
}
