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
