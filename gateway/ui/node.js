// This node: identity, addresses, peers, sync, storage and pins, and the member's profile.

import { get, post, put, upload } from "/ui/api.js";
import { bytes, formatPrice, h, message, mount, shortId } from "/ui/ui.js";

export async function node(view, _match, ctx) {
  // The forms are built once; only the sections below them refresh, so live updates never
  // wipe what the member is typing.
  const peersSection = h("section", { class: "card" });
  const statsSection = h("div");
  const connectError = h("p", { class: "form-error", role: "alert", hidden: true });
  const connect = h("form", { class: "inline" },
    h("input", { name: "multiaddr", placeholder: "/ip4/…/tcp/…/p2p/12D3Koo…", size: 40,
      "aria-label": "Peer address" }),
    h("button", { type: "submit" }, "Connect"));

  async function refresh() {
    const [status, peers, stat, pins, bridges] = await Promise.all([
      get("/api/v1/status"), get("/api/v1/peers"), get("/api/v1/ipfs/stat"),
      get("/api/v1/ipfs/pins"), get("/api/v1/bridges"),
    ]);
    mount(peersSection,
      h("h2", {}, `Connected peers (${peers.items.length})`),
      peers.items.length
        ? h("ul", { class: "plain mono", id: "peers" }, peers.items.map((p) =>
          h("li", {}, h("a", { href: `#/profile/${encodeURIComponent(p.peer_id)}` },
            shortId(p.peer_id, 10)), " ", p.addrs[0] || "")))
        : message("empty", "No peers yet",
          "Add bootstrap peers in config.toml, or connect to a peer's address below."),
      connect, connectError);
    mount(statsSection,
      h("section", { class: "card" },
        h("h2", {}, "Records and sync"),
        h("dl", { class: "facts" },
          h("dt", {}, "Records"), h("dd", {}, status.records),
          h("dt", {}, "Listings"), h("dd", {}, status.listings),
          h("dt", {}, "Messages"), h("dd", {}, status.messages),
          h("dt", {}, "Sync sessions"),
          h("dd", {}, `${status.sync_sessions} (${status.sync_failures} failed)`),
          h("dt", {}, "Records from sync"), h("dd", {}, status.sync_stored),
          h("dt", {}, "Gossip accepted / rejected"),
          h("dd", {}, `${status.gossip_accepted} / ${status.gossip_rejected}`))),
      h("section", { class: "card" },
        h("h2", {}, "Storage"),
        h("dl", { class: "facts" },
          h("dt", {}, "Used"), h("dd", { id: "storage-used" }, bytes(stat.bytes)),
          h("dt", {}, "Blocks"), h("dd", {}, stat.blocks),
          h("dt", {}, "Import profile"), h("dd", {}, stat.profile)),
        h("h3", {}, `Pins (${pins.items.length})`),
        pins.items.length
          ? h("ul", { class: "plain mono" }, pins.items.map((pin) => h("li", {},
            h("a", { href: `/ipfs/${pin.cid}`, target: "_blank", rel: "noopener" },
              shortId(pin.cid, 10)), " ", (pin.owners || []).join(", "))))
          : message("empty", "Nothing pinned", "Images of your listings are pinned here.")),
      bridgesSection(bridges));
  }

  connect.addEventListener("submit", async (event) => {
    event.preventDefault();
    try {
      await post("/api/v1/peers", { multiaddr: new FormData(connect).get("multiaddr").trim() });
      connect.reset();
      connectError.hidden = true;
      await refresh();
    } catch (error) {
      connectError.textContent = error.message;
      connectError.hidden = false;
    }
  });

  const profile = await get(`/api/v1/profiles/${encodeURIComponent(ctx.me.peer_id)}`)
    .catch(() => null);
  const profileSlot = h("div");
  const showProfile = (current) => mount(profileSlot, profileForm(current, ctx.me.limits, async () =>
    showProfile(await get(`/api/v1/profiles/${encodeURIComponent(ctx.me.peer_id)}`))));
  showProfile(profile);
  await refresh();
  mount(view,
    h("h1", {}, "This node"),
    h("section", { class: "card" },
      h("dl", { class: "facts" },
        h("dt", {}, "Peer ID"), h("dd", { class: "mono", id: "peer-id" }, ctx.me.peer_id),
        h("dt", {}, "Version"), h("dd", {}, ctx.me.version),
        h("dt", {}, "Addresses"),
        h("dd", {}, h("ul", { class: "plain mono" }, ctx.me.addrs.map((a) => h("li", {}, a)))))),
    profileSlot, peersSection, statsSection);
  const later = ctx.later(() => refresh().catch(() => {}), 2000);
  return ctx.live((type) => { if (type.endsWith(".stored")) later(); });
}

/** Bridges this node knows (configured first) and the ones it runs, with their terms. */
function bridgesSection({ items, running }) {
  const describe = (o) => [h("strong", {}, o.service), ` · ${o.access}`,
    o.price ? ` · ${formatPrice(o.price)} a request` : "",
    o.quota_per_day ? ` · ${o.quota_per_day} a day` : "",
    o.terms ? h("span", { class: "muted" }, ` · ${o.terms}`) : null];
  return h("section", { class: "card", id: "bridges" },
    h("h2", {}, "Bridges"),
    items.length
      ? h("ul", { class: "plain" }, items.map((b) => h("li", {},
        h("strong", {}, b.name), " ", h("span", { class: "mono muted" }, shortId(b.peer_id, 8)),
        b.configured ? " (in your config)" : " (announced)",
        h("ul", {}, b.offers.map((o) => h("li", {}, describe(o)))))))
      : message("empty", "No bridges known",
        "Payment and AI bridges appear here when they announce themselves."),
    running.length
      ? [h("h3", {}, "Run by this node"), h("ul", { class: "plain" }, running.map((r) =>
        h("li", {}, describe(r), ` · served ${r.served}`)))]
      : null);
}

function profileForm(profile, limits, done) {
  const state = h("p", { class: "form-error", role: "status", hidden: true });
  const form = h("form", { class: "card editor", id: "profile-form" },
    h("h2", {}, "Your profile"),
    h("label", {}, "Name", h("input", { name: "name", required: true,
      maxlength: limits.display_name,
      value: profile ? profile.name : "" })),
    profile && profile.avatar
      ? h("img", { class: "avatar", src: `/ipfs/${profile.avatar}`, alt: "Your avatar" }) : null,
    h("label", {}, "Avatar image", h("input", { type: "file", name: "avatar", accept: "image/*" })),
    state,
    h("button", { type: "submit" }, "Save profile"));
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const data = new FormData(form);
    const body = { name: String(data.get("name")).trim() };
    if (profile && profile.avatar) body.avatar = profile.avatar;
    if (profile && profile.wallet) {
      body.wallet = profile.wallet;
      body.wallet_sig = profile.wallet_sig;
    }
    try {
      const file = data.get("avatar");
      if (file && file.size) {
        const one = new FormData();
        one.append("file", file, file.name);
        body.avatar = (await upload("/api/v1/ipfs/add", one)).cid;
      }
      await put("/api/v1/profile", body);
      await done();
    } catch (error) {
      state.textContent = error.message;
      state.hidden = false;
    }
  });
  return form;
}
