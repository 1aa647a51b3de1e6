// Direct messages: conversations with unread counts, a conversation, and a new message (from
// a listing's "Message seller"). The node seals and delivers them; the page shows where each
// of ours is (sent, stored by a mailbox, delivered, read, failed).

import { ApiError, get, post } from "/ui/api.js";
import { h, message, mount, shortId, timeAgo } from "/ui/ui.js";

const STATUS_TEXT = {
  sent: "sent, waiting for their node",
  stored: "held by a mailbox",
  delivered: "delivered",
  read: "read",
  failed: "not delivered",
};

/** The total of unread messages, for the navigation badge. */
export async function unreadCount() {
  const { items } = await get("/api/v1/conversations");
  return items.reduce((sum, item) => sum + item.unread, 0);
}

/** #/messages */
export async function conversations(view, _match, ctx) {
  async function render() {
    const { items } = await get("/api/v1/conversations");
    mount(view,
      h("h1", {}, "Messages"),
      items.length
        ? h("ul", { class: "conversations plain", id: "conversations" }, items.map((c) =>
          h("li", { class: "card" },
            h("a", { href: `#/messages/${c.id}`, "data-conversation": c.id },
              h("strong", {}, c.name || shortId(c.peer)),
              c.unread ? h("span", { class: "badge", "aria-label": `${c.unread} unread` },
                String(c.unread)) : null),
            h("span", { class: "meta" }, ` ${c.messages} messages · ${timeAgo(c.last)}`))))
        : message("empty", "No messages yet",
          "Open a listing and use “Message seller”, or run zion dm send."));
  }
  await render();
  const later = ctx.later(() => render().catch(() => {}), 200);
  return ctx.live((type) => { if (type.startsWith("dm.")) later(); });
}

/** #/messages/ID */
export async function conversation(view, [id], ctx) {
  const thread = h("ol", { class: "messages", id: "thread", "aria-live": "polite" });
  const error = h("p", { class: "form-error", role: "alert", hidden: true });
  const input = h("input", { name: "text", "aria-label": "Message", autocomplete: "off",
    maxlength: ctx.me.limits.message, required: true, "data-autofocus": true });
  const form = h("form", { class: "composer" }, input, h("button", { type: "submit" }, "Send"));
  let peerName = null;

  async function render() {
    const { items } = await get(`/api/v1/conversations/${id}/messages`);
    if (!items.length) throw new ApiError(404, "not-found", "No such conversation.");
    if (peerName === null) {
      const profile = await get(`/api/v1/profiles/${encodeURIComponent(items[0].peer)}`)
        .catch(() => null);
      peerName = profile ? profile.name : shortId(items[0].peer);
    }
    mount(thread, items.map((m) => h("li", { class: m.outgoing ? "mine" : "theirs",
      "data-id": m.id, "data-status": m.status },
    h("span", { class: "who" }, m.outgoing ? "you" : peerName),
    h("time", { datetime: new Date(m.sent).toISOString() }, timeAgo(m.sent)),
    m.listing ? h("span", { class: "about", title: `listing version ${m.listing}` },
      "about a listing") : null,
    h("p", {}, m.text),
    m.outgoing ? h("span", { class: "status" }, STATUS_TEXT[m.status] || m.status,
      m.status === "failed" && m.detail ? `: ${m.detail}` : "") : null)));
    if (items.some((m) => !m.outgoing && m.status === "unread")) {
      await post(`/api/v1/conversations/${id}/read`, {});
    }
  }

  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const text = input.value.trim();
    if (!text) return;
    try {
      await post(`/api/v1/conversations/${id}/messages`, { text });
      input.value = "";
      error.hidden = true;
      await render();
    } catch (failure) {
      error.textContent = failure.message;
      error.hidden = false;
    }
  });

  await render();
  mount(view, h("p", {}, h("a", { href: "#/messages" }, "← Messages")),
    h("h1", {}, peerName), h("section", { class: "card chat" }, thread), form, error);
  const later = ctx.later(() => render().catch(() => {}), 150);
  return ctx.live((type, data) => { if (type.startsWith("dm.") && data.conversation === id) later(); });
}

/** #/messages/new?to=PEER&listing=CID&title=... */
export async function compose(view, _match, ctx) {
  const to = ctx.params.get("to") || "";
  const listing = ctx.params.get("listing");
  const title = ctx.params.get("title");
  const profile = to ? await get(`/api/v1/profiles/${encodeURIComponent(to)}`).catch(() => null)
    : null;
  const error = h("p", { class: "form-error", role: "alert", hidden: true });
  const form = h("form", { class: "card editor" },
    h("label", {}, "To", h("input", { name: "to", value: to, required: true,
      placeholder: "a peer ID or a member's name" })),
    title ? h("p", { class: "muted" }, `About: ${title}`) : null,
    h("label", {}, "Message", h("textarea", { name: "text", rows: 4, required: true,
      maxlength: ctx.me.limits.message, "data-autofocus": true })),
    error,
    h("button", { type: "submit" }, "Send"));
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const data = new FormData(form);
    const body = { to: String(data.get("to")).trim(), text: String(data.get("text")).trim() };
    if (listing) body.listing = listing;
    try {
      const sent = await post("/api/v1/conversations", body);
      location.hash = `#/messages/${sent.conversation}`;
    } catch (failure) {
      error.textContent = failure.message;
      error.hidden = false;
    }
  });
  mount(view, h("h1", {}, profile ? `Message ${profile.name}` : "New message"), form);
}
