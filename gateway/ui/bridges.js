// Bridges in the UI: buying a listing through a Stripe bridge, the member's orders, drafting
// a listing and asking about listings through an AI bridge, and recommendations (which need
// no bridge). Wherever a bridge answers, the page says which one.

import { ApiError, get, post, streamLines } from "/ui/api.js";
import { formatPrice, h, message, mount, shortId, timeAgo } from "/ui/ui.js";

const STATUS_TEXT = {
  "awaiting-payment": "Awaiting payment",
  paid: "Paid",
  refunded: "Refunded",
};

async function bridgesFor(service) {
  const { items } = await get("/api/v1/bridges");
  return items.filter((b) => b.offers.some((offer) => offer.service === service));
}

function bridgeName(bridges, peer) {
  const found = bridges.find((b) => b.peer_id === peer);
  return found ? found.name : `bridge ${shortId(peer)}`;
}

function statusBadge(status) {
  return h("span", { class: `badge-status status-${status}`, "data-status": status },
    STATUS_TEXT[status] || status);
}

/** The listing page's "Buy" box: starts a payment through a Stripe bridge and follows it
 * until the bridge's receipt says it is paid. */
export async function buyBox(item, ctx) {
  const box = h("section", { class: "card buy", "aria-label": "Buy" });
  if (!item.price || item.price.amount === 0) return null;
  const bridges = await bridgesFor("stripe").catch(() => []);
  const mine = (await get("/api/v1/payments").catch(() => ({ items: [] }))).items
    .filter((order) => order.listing === item.id && order.role === "buyer");
  const error = h("p", { class: "form-error", role: "alert", hidden: true });
  const state = h("div", { class: "order-state", "aria-live": "polite" });
  const buy = h("button", { type: "button" }, `Buy for ${formatPrice(item.price)}`);
  let shown = null;

  function showOrder(order) {
    shown = order.payment_intent;
    buy.hidden = order.status === "paid";
    mount(state,
      h("p", {}, statusBadge(order.status), " ",
        `${formatPrice(order)} through ${bridgeName(bridges, order.bridge)}`),
      h("p", { class: "muted mono" }, `Payment ${order.payment_intent}`),
      order.client_secret && order.status === "awaiting-payment"
        ? h("details", {},
          h("summary", {}, "Pay with your card"),
          h("p", {}, "The bridge has created this payment at Stripe. Confirm it with your card ",
            "through Stripe (Stripe.js, with the bridge's publishable key and the client ",
            "secret below; this page does not take card numbers itself). It turns to “Paid” as ",
            "soon as the bridge's signed receipt arrives."),
          h("code", { class: "secret" }, order.client_secret))
        : null);
  }

  if (mine.length) showOrder(mine[0]);
  buy.disabled = !bridges.length;
  buy.addEventListener("click", async () => {
    buy.disabled = true;
    error.hidden = true;
    try {
      showOrder(await post("/api/v1/payments", { listing: item.id }));
    } catch (failure) {
      error.textContent = `Not started: ${failure.message}`;
      error.hidden = false;
    } finally {
      buy.disabled = false;
    }
  });
  mount(box,
    h("h2", {}, "Buy"),
    bridges.length
      ? h("p", { class: "muted" }, `Card payments through ${bridges[0].name}`,
        bridges[0].offers.find((o) => o.service === "stripe").terms
          ? ` · ${bridges[0].offers.find((o) => o.service === "stripe").terms}` : "")
      : h("p", { class: "muted" }, "No payment bridge is known to this node yet."),
    buy, error, state);
  // A receipt for one of this listing's payments: show the order as it now stands.
  // The listing page calls box.stop() when it draws itself again.
  box.stop = ctx.live((type, data) => {
    if (type !== "receipt.stored" || !data || data.subject !== shown) return;
    get(`/api/v1/payments/${encodeURIComponent(shown)}`).then(showOrder).catch(() => {});
  });
  return box;
}

/** #/orders: what this member bought and sold. */
export async function orders(view, _match, ctx) {
  const list = h("ul", { class: "orders", "aria-live": "polite" });
  async function render() {
    const { items } = await get("/api/v1/payments");
    mount(list, items.length
      ? items.map((order) => h("li", { class: "card order", "data-payment": order.payment_intent },
        h("p", {}, statusBadge(order.status), " ",
          h("strong", {}, order.role === "seller" ? "Sold" : order.role === "buyer" ? "Bought" : "Took"),
          " ",
          order.listing
            ? h("a", { href: `#/listing/${encodeURIComponent(order.listing)}` },
              order.title || "a listing")
            : (order.title || "a listing"),
          ` · ${formatPrice(order)}`),
        h("p", { class: "muted" },
          `${timeAgo(order.created)} · payment ${order.payment_intent} · `,
          order.receipt ? `receipt signed by bridge ${shortId(order.bridge)}`
            : `through bridge ${shortId(order.bridge)}`,
          order.refunded ? ` · ${formatPrice({ amount: order.refunded, currency: order.currency })} refunded` : "")))
      : [h("li", {}, message("empty", "No orders yet",
        "Buy a listing from its page; sales of your listings appear here too."))]);
  }
  mount(view, h("h1", {}, "Orders"), list);
  await render();
  const rerender = ctx.later(() => render().catch(() => {}), 200);
  // Only receipts that concern this member redraw the page.
  return ctx.live((type, data) => {
    const body = data && data.body;
    if (type === "receipt.stored" && body
      && [body.buyer, body.seller, data.author].includes(ctx.me.peer_id)) rerender();
  });
}

/** A line saying who wrote an answer: the bridge's name and ID. */
function sourceLine(item) {
  return h("p", { class: "source muted" }, "Written by ", h("strong", {}, item.name),
    ` (AI bridge ${shortId(item.bridge)})`);
}

/** The editor's "Draft with AI": notes in, a title and description streamed back into the
 * form's fields. */
export function draftAssist(form) {
  const notes = h("textarea", { name: "notes", rows: 3,
    placeholder: "oak table, seats six, small scratch on one leg" });
  const output = h("pre", { class: "draft", "aria-live": "polite", hidden: true });
  const source = h("div");
  const error = h("p", { class: "form-error", role: "alert", hidden: true });
  const go = h("button", { type: "button", class: "secondary" }, "Draft");
  go.addEventListener("click", async () => {
    if (!notes.value.trim()) {
      error.textContent = "Write a few notes first.";
      error.hidden = false;
      return;
    }
    go.disabled = true;
    error.hidden = true;
    output.hidden = false;
    output.textContent = "";
    source.replaceChildren();
    let text = "";
    try {
      await streamLines("/api/v1/ai/draft", {
        notes: notes.value,
        title: form.elements.title.value,
        category: form.elements.category.value,
      }, (item) => {
        if (item.type === "source") mount(source, sourceLine(item));
        else if (item.type === "chunk") {
          text += item.text;
          output.textContent = text;
        } else if (item.type === "error") throw new ApiError(502, item.reason, item.message);
      });
      const title = text.match(/^Title:\s*(.+)$/m);
      const description = text.match(/Description:\s*([\s\S]+)$/);
      if (title) form.elements.title.value = title[1].trim();
      form.elements.description.value = (description ? description[1] : text).trim();
    } catch (failure) {
      error.textContent = `No draft: ${failure.message}`;
      error.hidden = false;
    } finally {
      go.disabled = false;
    }
  });
  return h("details", { class: "assist" },
    h("summary", {}, "Draft with AI"),
    h("p", { class: "muted" }, "Your notes go to an AI bridge, which writes a title and a ",
      "description into this form for you to check."),
    h("label", {}, "Notes", notes), go, error, source, output);
}

/** The market page's "Ask about listings": an answer streamed from an AI bridge, from the
 * listings this node has. */
export function askBox() {
  const question = h("input", { name: "question", type: "text", autocomplete: "off",
    placeholder: "Is there a bike under 100 EUR?" });
  const answer = h("p", { class: "answer", "aria-live": "polite" });
  const source = h("div");
  const used = h("p", { class: "muted" });
  const error = h("p", { class: "form-error", role: "alert", hidden: true });
  const form = h("form", { class: "ask" },
    h("label", {}, "Ask about listings", question),
    h("button", { type: "submit", class: "secondary" }, "Ask"));
  const ask = form.querySelector("button");
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    if (!question.value.trim() || ask.disabled) return;
    ask.disabled = true;  // one answer at a time: two would interleave their text
    error.hidden = true;
    answer.textContent = "";
    source.replaceChildren();
    used.replaceChildren();
    try {
      await streamLines("/api/v1/ai/ask", { question: question.value }, (item) => {
        if (item.type === "source") mount(source, sourceLine(item));
        else if (item.type === "context") {
          mount(used, item.listings.length
            ? `Based on ${item.listings.length} listing(s) on this node.`
            : "No listing on this node matched the question.");
        } else if (item.type === "chunk") answer.textContent += item.text;
        else if (item.type === "error") throw new ApiError(502, item.reason, item.message);
      });
    } catch (failure) {
      error.textContent = failure.message;
      error.hidden = false;
    } finally {
      ask.disabled = false;
    }
  });
  return h("section", { class: "card ask-box" }, form, error, source, answer, used);
}

/** Listings like `item`, with where their ranking came from. */
export async function similarSection(item, card) {
  const found = await get(`/api/v1/listings/${encodeURIComponent(item.id)}/similar`)
    .catch(() => null);
  if (!found || !found.items.length) return null;
  return h("section", { class: "similar" },
    h("h2", {}, "Similar listings"),
    h("p", { class: "muted source", "data-source": found.source },
      found.source === "embeddings"
        ? "Ranked with embeddings from an AI bridge."
        : "Ranked by this node from its own listings."),
    h("ul", { class: "grid" }, found.items.map(card)));
}
