// The web UI's entry: checks the login, starts live events, and routes #/... to pages.

import { ApiError, get } from "/ui/api.js";
import { connect, subscribe } from "/ui/events.js";
import { h, message, mount, notice } from "/ui/ui.js";
import * as market from "/ui/market.js";
import * as channels from "/ui/channels.js";
import * as dao from "/ui/dao.js";
import * as nodePage from "/ui/node.js";

// [pattern, nav section, page function(main, match, ctx) -> optional cleanup]
const ROUTES = [
  [/^\/?$/, "market", market.browse],
  [/^\/search$/, "market", market.browse],
  [/^\/listing\/([^/]+)$/, "market", market.listing],
  [/^\/new$/, "market", market.editor],
  [/^\/edit\/([^/]+)$/, "market", market.editor],
  [/^\/profile\/([^/]+)$/, "market", market.profile],
  [/^\/channels\/([a-z0-9][a-z0-9_-]*)$/, "channels", channels.channel],
  [/^\/dao$/, "dao", dao.proposals],
  [/^\/dao\/new$/, "dao", dao.create],
  [/^\/dao\/(\d+)$/, "dao", dao.proposal],
  [/^\/node$/, "node", nodePage.node],
];

const ctx = { me: null, params: new URLSearchParams(), live: subscribe };
let cleanup = null;

function parseHash() {
  const raw = location.hash.replace(/^#/, "") || "/";
  const [path, query = ""] = raw.split("?");
  return { path, query: new URLSearchParams(query) };
}

async function route() {
  const main = document.getElementById("main");
  if (cleanup) {
    try { cleanup(); } catch { /* a page's cleanup must not stop navigation */ }
    cleanup = null;
  }
  const { path, query } = parseHash();
  ctx.params = query;
  for (const [pattern, section, page] of ROUTES) {
    const match = path.match(pattern);
    if (!match) continue;
    for (const link of document.querySelectorAll("nav a")) {
      link.toggleAttribute("aria-current", link.dataset.nav === section);
    }
    try {
      cleanup = (await page(main, match.slice(1).map(decodeURIComponent), ctx)) || null;
    } catch (error) {
      mount(main, showError(error));
    }
    // Keyboard and screen reader users land on the new content, unless the page already
    // put the focus somewhere in it (a form's first field).
    if (!main.contains(document.activeElement)) main.focus({ preventScroll: true });
    return;
  }
  mount(main, message("empty", "No such page", `Nothing lives at #${path}.`),
    h("p", {}, h("a", { href: "#/" }, "Back to the market")));
}

export function showError(error) {
  if (error instanceof ApiError && error.status === 503) {
    return message("error", "Not available on this node", error.message);
  }
  if (error instanceof ApiError && error.status === 404) {
    return message("empty", "Not found", error.message);
  }
  return message("error", "Something went wrong", error.message || String(error));
}

function loggedOut(main) {
  mount(main,
    h("section", { class: "card login" },
      h("h1", {}, "Log in to your node"),
      h("p", {}, "This browser has no session with this node yet. Open the login address that ",
        h("code", {}, "zion run"), " printed, or run ", h("code", {}, "zion open"),
        " to open this page logged in."),
      h("p", { class: "muted" },
        "The login address carries the node's API token once; the browser then keeps it in a ",
        "cookie that scripts cannot read.")));
}

async function start() {
  const main = document.getElementById("main");
  // The skip link's "#main" would be taken for a route: move the focus ourselves.
  document.querySelector(".skip").addEventListener("click", (event) => {
    event.preventDefault();
    main.focus();
  });
  try {
    ctx.me = await get("/api/v1/node");
  } catch (error) {
    if (error instanceof ApiError && error.status === 401) {
      document.getElementById("live").textContent = "logged out";
      loggedOut(main);
      return;
    }
    notice(error.message);
    mount(main, showError(error));
    return;
  }
  connect();
  window.addEventListener("hashchange", route);
  await route();
}

start();
