// Marketplace pages: browse and search, a listing, create/edit with image upload, a seller.

import { ApiError, del, get, upload } from "/ui/api.js";
import { askBox, buyBox, draftAssist, similarSection } from "/ui/bridges.js";
import { decimals, formatPrice, h, message, mount, parsePrice, shortId, timeAgo }
  from "/ui/ui.js";

const PAGE_SIZE = 24;
const LISTING_EVENTS = new Set(["listing.stored", "listing.deleted", "listing.expired"]);

function imageUrl(cid) {
  return `/ipfs/${encodeURIComponent(cid)}`;
}

function card(item) {
  const cover = item.images && item.images[0];
  return h("li", { class: "listing-card" },
    h("a", { href: `#/listing/${encodeURIComponent(item.id)}`, class: "listing-link",
      "data-id": item.id },
      cover
        ? h("img", { src: imageUrl(cover), alt: "", loading: "lazy", class: "thumb" })
        : h("div", { class: "thumb thumb-empty", "aria-hidden": "true" }, "no image"),
      h("span", { class: "listing-title" }, item.title),
      h("span", { class: "price" }, formatPrice(item.price)),
      h("span", { class: "meta" }, `${item.category} · ${timeAgo(item.created)}`)));
}

function filtersForm(ctx, categories, onSubmit) {
  const p = ctx.params;
  const currency = p.get("currency") || "";
  const places = decimals(currency || "EUR");
  const shown = (minor) => (minor ? (Number(minor) / 10 ** places).toString() : "");
  const form = h("form", { class: "filters", role: "search" },
    h("label", {}, "Search", h("input", { type: "search", name: "q", value: p.get("q") || "",
      placeholder: "oak table, bike…", autocomplete: "off" })),
    h("label", {}, "Category",
      h("select", { name: "category" },
        h("option", { value: "" }, "All categories"),
        categories.map((c) => h("option", { value: c.name, selected: c.name === p.get("category") },
          `${c.name} (${c.listings})`)))),
    h("label", {}, "Currency", h("input", { name: "currency", value: currency, size: 5,
      placeholder: "EUR", title: "ISO code, e.g. EUR" })),
    h("label", {}, "Min price", h("input", { name: "min", value: shown(p.get("min_price")),
      inputmode: "decimal", size: 7 })),
    h("label", {}, "Max price", h("input", { name: "max", value: shown(p.get("max_price")),
      inputmode: "decimal", size: 7 })),
    h("button", { type: "submit" }, "Search"));
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    const data = new FormData(form);
    const query = new URLSearchParams();
    const cur = String(data.get("currency") || "").trim().toUpperCase();
    for (const key of ["q", "category"]) {
      const value = String(data.get(key) || "").trim();
      if (value) query.set(key, value);
    }
    for (const [field, key] of [["min", "min_price"], ["max", "max_price"]]) {
      const text = String(data.get(field) || "").trim();
      if (!text) continue;
      const minor = parsePrice(text, cur || "EUR");
      if (minor === null) {
        onSubmit(null, `${field === "min" ? "Min" : "Max"} price is not a number`);
        return;
      }
      query.set(key, String(minor));
    }
    if (cur || query.has("min_price") || query.has("max_price")) query.set("currency", cur || "EUR");
    onSubmit(query);
  });
  return form;
}

/** #/ and #/search?q=&category=&currency=&min_price=&max_price= */
export async function browse(view, _match, ctx) {
  const categories = (await get("/api/v1/categories")).items;
  const results = h("ul", { class: "grid", id: "listings", "aria-live": "polite" });
  const more = h("button", { type: "button", class: "secondary", hidden: true }, "Load more");
  const newer = h("button", { type: "button", class: "secondary", hidden: true },
    "New listings arrived: show them");
  const status = h("p", { class: "form-error", role: "alert", hidden: true });
  const searching = ["q", "category", "currency", "min_price", "max_price"]
    .some((key) => ctx.params.get(key));
  let next = null;
  let pages = 0;
  // Only the latest request may change the list (a reload can overtake a "Load more").
  let latest = 0;

  const filters = filtersForm(ctx, categories, (query, error) => {
    status.hidden = !error;
    status.textContent = error || "";
    if (query) location.hash = `#/search?${query.toString()}`;
  });

  const params = () => ({
    q: ctx.params.get("q"), category: ctx.params.get("category"),
    currency: ctx.params.get("currency"), min_price: ctx.params.get("min_price"),
    max_price: ctx.params.get("max_price"), limit: PAGE_SIZE,
  });

  async function load(reset) {
    const request = ++latest;
    const page = await get("/api/v1/listings", { ...params(), cursor: reset ? null : next });
    if (request !== latest) return;
    if (reset) {
      results.replaceChildren();
      pages = 0;
      newer.hidden = true;
    }
    pages += 1;
    for (const item of page.items) results.appendChild(card(item));
    next = page.next;
    more.hidden = !next;
    if (!results.children.length) {
      results.appendChild(h("li", { class: "wide" }, searching
        ? message("empty", "Nothing matches", "Try other words or fewer filters.")
        : message("empty", "No listings yet",
          "Listings from the network appear here as they arrive. Be the first: create one.")));
    }
  }
  more.addEventListener("click", () => load(false).catch(showInline));
  newer.addEventListener("click", () => load(true).catch(showInline));
  function showInline(error) {
    status.hidden = false;
    status.textContent = error.message;
  }

  mount(view,
    h("div", { class: "page-head" },
      h("h1", {}, searching ? "Search" : "Newest listings"),
      h("a", { href: "#/new", class: "button" }, "New listing")),
    filters, searching ? null : askBox(), status, newer, results, more);
  await load(true);
  // Live: the first page follows the network; a member who has loaded more pages is offered
  // the news instead of losing their place.
  const reload = ctx.later(() => load(true).catch(showInline), 250);
  return ctx.live((type) => {
    if (!LISTING_EVENTS.has(type)) return;
    if (pages <= 1) reload();
    else newer.hidden = false;
  });
}

/** #/listing/ID */
export async function listing(view, [id], ctx) {
  let buy = null;
  async function render() {
    let item;
    try {
      item = await get(`/api/v1/listings/${encodeURIComponent(id)}`);
    } catch (error) {
      if (error instanceof ApiError && error.status === 404) {
        mount(view, message("empty", "This listing is gone",
          "It was deleted or has expired, or it has not reached this node yet."),
        h("p", {}, h("a", { href: "#/" }, "Back to the market")));
        return;
      }
      throw error;
    }
    const mine = item.author === ctx.me.peer_id;
    const seller = await get(`/api/v1/profiles/${encodeURIComponent(item.author)}`).catch(() => null);
    // Buying and similar listings ask other services: the listing shows first, they follow.
    if (buy && buy.stop) buy.stop();  // the box drawn before stops following its payment
    const buySlot = h("div");
    const similarSlot = h("div");
    if (!mine) {
      buyBox(item, ctx).then((box) => {
        buy = box;
        if (box) buySlot.replaceChildren(box);
      }).catch(() => {});
    }
    similarSection(item, card).then((section) => {
      if (section) similarSlot.replaceChildren(section);
    }).catch(() => {});
    const remove = h("button", { type: "button", class: "danger" }, "Delete");
    const removeError = h("p", { class: "form-error", role: "alert", hidden: true });
    remove.addEventListener("click", async () => {
      if (!confirm(`Delete "${item.title}"? The deletion is signed and sent to the network.`)) return;
      remove.disabled = true;
      try {
        await del(`/api/v1/listings/${encodeURIComponent(id)}`);
        location.hash = "#/";
      } catch (error) {
        removeError.textContent = `Not deleted: ${error.message}`;
        removeError.hidden = false;
        remove.disabled = false;
      }
    });
    mount(view,
      h("article", { class: "listing", "data-id": item.id },
        h("p", {}, h("a", { href: "#/" }, "← Market")),
        h("h1", {}, item.title),
        h("p", { class: "price big" }, formatPrice(item.price)),
        h("div", { class: "gallery" }, item.images.map((cid) =>
          h("a", { href: imageUrl(cid), target: "_blank", rel: "noopener" },
            h("img", { src: imageUrl(cid), alt: `Image of ${item.title}` })))),
        h("p", { class: "description" }, item.description || "No description."),
        h("dl", { class: "facts" },
          h("dt", {}, "Category"), h("dd", {}, item.category),
          item.location ? [h("dt", {}, "Location"), h("dd", {}, item.location)] : null,
          item.tags.length ? [h("dt", {}, "Tags"), h("dd", {}, item.tags.join(", "))] : null,
          h("dt", {}, "Seller"),
          h("dd", {}, h("a", { href: `#/profile/${encodeURIComponent(item.author)}` },
            seller ? seller.name : shortId(item.author)), mine ? " (you)" : ""),
          h("dt", {}, "Listed"), h("dd", {}, `${timeAgo(item.created)} · version ${item.seq}`),
          item.expires ? [h("dt", {}, "Expires"),
            h("dd", {}, new Date(item.expires).toLocaleDateString())] : null),
        mine ? null : h("div", { class: "actions" },
          h("a", { class: "button", href: `#/messages/new?${new URLSearchParams({
            to: item.author, listing: item.cid, title: item.title })}` }, "Message seller")),
        mine ? h("div", { class: "actions" },
          h("a", { href: `#/edit/${encodeURIComponent(item.id)}`, class: "button" }, "Edit"),
          remove, removeError) : null,
        buySlot),
      similarSlot);
  }
  await render();
  const rerender = ctx.later(() => render().catch(() => {}), 200);
  return ctx.live((type, data) => {
    if (LISTING_EVENTS.has(type) && data && data.subject === id) rerender();
  });
}

/** #/new and #/edit/ID */
export async function editor(view, [id], ctx) {
  const existing = id ? await get(`/api/v1/listings/${encodeURIComponent(id)}`) : null;
  if (existing && existing.author !== ctx.me.peer_id) {
    mount(view, message("error", "Not yours", "Only the seller's node can edit this listing."));
    return;
  }
  const limit = ctx.me.limits;
  const value = existing || { title: "", description: "", category: "", tags: [], images: [],
    price: { amount: 0, currency: "EUR" }, location: null };
  const places = decimals(value.price.currency);
  const keptImages = [...value.images];
  const progress = h("progress", { max: 1, value: 0, hidden: true, "aria-label": "Upload progress" });
  const error = h("p", { class: "form-error", role: "alert", hidden: true });
  const kept = h("ul", { class: "kept-images" });
  function renderKept() {
    mount(kept, keptImages.map((cid, index) => h("li", {},
      h("img", { src: imageUrl(cid), alt: "" }),
      h("button", { type: "button", class: "secondary", "aria-label": "Remove image",
        onclick: () => { keptImages.splice(index, 1); renderKept(); } }, "Remove"))));
  }
  renderKept();

  const form = h("form", { class: "card editor", novalidate: true },
    h("label", {}, "Title", h("input", { name: "title", required: true, maxlength: limit.title,
      value: value.title })),
    h("label", {}, "Description", h("textarea", { name: "description", rows: 6 },
      value.description)),
    h("div", { class: "row" },
      h("label", {}, "Price", h("input", { name: "price", inputmode: "decimal", required: true,
        value: existing ? (value.price.amount / 10 ** places).toFixed(places) : "" })),
      h("label", {}, "Currency", h("input", { name: "currency", required: true, size: 5,
        value: value.price.currency }))),
    h("div", { class: "row" },
      h("label", {}, "Category", h("input", { name: "category", required: true,
        value: value.category, placeholder: "furniture" })),
      h("label", {}, "Location", h("input", { name: "location", value: value.location || "" }))),
    h("label", {}, "Tags (comma separated)", h("input", { name: "tags",
      value: value.tags.join(", ") })),
    existing ? h("div", {}, h("p", { class: "label" }, "Images"), kept) : null,
    h("label", {}, existing ? "Add images" : "Images",
      h("input", { type: "file", name: "image", accept: "image/*", multiple: true })),
    progress, error,
    h("div", { class: "actions" },
      h("button", { type: "submit" }, existing ? "Save changes" : "Publish listing"),
      h("a", { href: existing ? `#/listing/${encodeURIComponent(id)}` : "#/",
        class: "button secondary" }, "Cancel")));

  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const data = new FormData(form);
    const currency = String(data.get("currency")).trim().toUpperCase();
    const amount = parsePrice(data.get("price"), currency);
    const fail = (text) => {
      error.textContent = text;
      error.hidden = false;
    };
    if (!String(data.get("title")).trim()) return fail("A listing needs a title.");
    if (amount === null) return fail(`The price is not a valid amount of ${currency}.`);
    if (!String(data.get("category")).trim()) return fail("A listing needs a category.");
    const files = data.getAll("image").filter((file) => file && file.size > 0);
    if (keptImages.length + files.length > limit.images) {
      return fail(`At most ${limit.images} images per listing.`);
    }
    const fields = {
      title: String(data.get("title")).trim(),
      description: String(data.get("description")),
      price: { amount, currency },
      category: String(data.get("category")).trim(),
      tags: String(data.get("tags")).split(",").map((t) => t.trim()).filter(Boolean),
    };
    const place = String(data.get("location")).trim();
    if (place) fields.location = place;
    error.hidden = true;
    const submit = form.querySelector("button[type=submit]");
    submit.disabled = true;
    progress.hidden = files.length === 0;
    const onProgress = (fraction) => { progress.value = fraction; };
    try {
      // One multipart request: the node checks the images, adds them and saves the listing.
      const body = new FormData();
      const kept = existing ? { images: keptImages, expires: existing.expires } : {};
      body.append("listing", JSON.stringify({ ...fields, ...kept }));
      for (const file of files) body.append("image", file, file.name);
      const saved = existing
        ? await upload(`/api/v1/listings/${encodeURIComponent(id)}`, body, onProgress, "PUT")
        : await upload("/api/v1/listings", body, onProgress);
      location.hash = `#/listing/${encodeURIComponent(saved.id)}`;
    } catch (failure) {
      fail(failure.message);
    } finally {
      submit.disabled = false;
    }
  });
  form.querySelector("input[name=title]").dataset.autofocus = "";
  mount(view, h("h1", {}, existing ? "Edit listing" : "New listing"), draftAssist(form), form);
}

/** #/profile/PEER: a member and their listings. */
export async function profile(view, [peer], ctx) {
  const person = await get(`/api/v1/profiles/${encodeURIComponent(peer)}`).catch((error) => {
    if (error instanceof ApiError && error.status === 404) return null;
    throw error;
  });
  const page = await get("/api/v1/listings", { author: peer, limit: 100 });
  mount(view,
    h("section", { class: "card profile" },
      person && person.avatar
        ? h("img", { class: "avatar", src: imageUrl(person.avatar), alt: "" }) : null,
      h("h1", {}, person ? person.name : "A member without a profile"),
      h("p", { class: "mono" }, peer, peer === ctx.me.peer_id ? " (you)" : ""),
      person && person.wallet ? h("p", {}, "Wallet ", h("code", {}, person.wallet)) : null),
    h("h2", {}, "Listings"),
    page.items.length
      ? h("ul", { class: "grid" }, page.items.map(card))
      : message("empty", "No listings", "This member has no listings on this node."));
}
