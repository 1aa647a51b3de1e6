// Public channels: read and post, with new messages arriving live.

import { get, post } from "/ui/api.js";
import { h, message, mount, shortId, timeAgo } from "/ui/ui.js";

const HISTORY = 100;

/** #/channels/NAME */
export async function channel(view, [name], ctx) {
  const names = new Map();
  const seen = new Set();
  const list = h("ol", { class: "messages", id: "messages", "aria-live": "polite" });
  const empty = message("empty", `No messages in #${name} yet`, "Say hello: your message goes to every node.");

  async function author(peer) {
    if (!names.has(peer)) {
      names.set(peer, get(`/api/v1/profiles/${encodeURIComponent(peer)}`)
        .then((p) => p.name).catch(() => shortId(peer)));
    }
    return names.get(peer);
  }

  function add(item) {
    if (seen.has(item.id)) return;
    seen.add(item.id);
    empty.remove();
    const who = h("a", { class: "who", href: `#/profile/${encodeURIComponent(item.author)}` },
      item.author === ctx.me.peer_id ? "you" : shortId(item.author));
    if (item.author !== ctx.me.peer_id) author(item.author).then((n) => { who.textContent = n; });
    const row = h("li", { "data-id": item.id, "data-created": item.created },
      who, h("time", { datetime: new Date(item.created).toISOString() }, timeAgo(item.created)),
      h("p", {}, item.text));
    // Keep time order even when gossip delivers out of order.
    const after = [...list.children].find((li) => Number(li.dataset.created) > item.created);
    list.insertBefore(row, after || null);
    if (!after) row.scrollIntoView({ block: "nearest" });
  }

  const input = h("input", { name: "text", placeholder: `Message #${name}`, autocomplete: "off",
    "data-autofocus": true,
    maxlength: ctx.me.limits.message, "aria-label": "Message", required: true });
  const error = h("p", { class: "form-error", role: "alert", hidden: true });
  const form = h("form", { class: "composer" }, input, h("button", { type: "submit" }, "Send"));
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const text = input.value.trim();
    if (!text) return;
    try {
      add(await post(`/api/v1/channels/${name}/messages`, { text }));
      input.value = "";
      error.hidden = true;
    } catch (failure) {
      error.textContent = failure.message;
      error.hidden = false;
    }
  });

  const jump = h("form", { class: "inline" },
    h("input", { name: "channel", placeholder: "other channel", size: 14,
      "aria-label": "Go to channel" }),
    h("button", { type: "submit", class: "secondary" }, "Go"));
  jump.addEventListener("submit", (event) => {
    event.preventDefault();
    const other = new FormData(jump).get("channel").trim().toLowerCase();
    const pattern = new RegExp(`^[a-z0-9][a-z0-9_-]{0,${ctx.me.limits.channel - 1}}$`);
    if (pattern.test(other)) location.hash = `#/channels/${other}`;
  });

  mount(view, h("div", { class: "page-head" }, h("h1", {}, `#${name}`), jump),
    h("section", { class: "card chat" }, list, empty), form, error);
  // Listen before reading the history, so nothing that arrives meanwhile is missed (add()
  // drops what both deliver).
  const stop = ctx.live((type, data) => {
    if (type === "message.stored" && data.body && data.body.channel === name) {
      add({ id: data.id, author: data.author, text: data.body.text, created: data.created });
    }
  });
  try {
    const page = await get(`/api/v1/channels/${name}/messages`, { limit: HISTORY });
    for (const item of page.items.reverse()) add(item);
  } catch (error) {
    stop();
    throw error;
  }
  return stop;
}
