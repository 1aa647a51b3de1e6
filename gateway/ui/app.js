// The web UI's entry: checks the login, starts live events, and routes #/... to pages.

import { ApiError, get } from "/ui/api.js";
import { start as startEvents, subscribe } from "/ui/events.js";
import { h, message, mount, notice } from "/ui/ui.js";
import * as market from "/ui/market.js";
import * as channels from "/ui/channels.js";
import * as dao from "/ui/dao.js";
import * as nodePage from "/ui/node.js";
import * as messages from "/ui/messages.js";
import * as bridges from "/ui/bridges.js";

// [pattern, nav section, page function(view, match, ctx) -> optional cleanup]. A page draws
// into `view`, which the router shows once the page function returns (if the member has not
// moved on meanwhile); ctx.live and ctx.later stop working once the page is left.
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
  [/^\/messages$/, "messages", messages.conversations],
  [/^\/messages\/new$/, "messages", messages.compose],
  [/^\/messages\/([0-9a-f]{32})$/, "messages", messages.conversation],
  [/^\/orders$/, "orders", bridges.orders],
];

let me = null;
let navigation = 0;
let cleanup = null;

function parseHash() {
  const raw = location.hash.replace(/^#/, "") || "/";
  const [path, query = ""] = raw.split("?");
  return { path, query: new URLSearchParams(query) };
}

/** What a page gets besides its view: only valid while it is the current page. */
function pageContext(current, params) {
  const isCurrent = () => current === navigation;
  return {
    me,
    params,
    isCurrent,
    live(fn) {
      const off = subscribe((type, data) => {
        if (isCurrent()) fn(type, data);
        else off();
      });
      return off;
    },
    /** A debounced `fn` that never runs once the page is left. */
    later(fn, ms) {
      let timer = null;
      return () => {
        clearTimeout(timer);
        timer = setTimeout(() => { if (isCurrent()) fn(); }, ms);
      };
    },
  };
}

async function route() {
  const current = ++navigation;
  const main = document.getElementById("main");
  if (cleanup) {
    try { cleanup(); } catch { /* a page's cleanup must not stop navigation */ }
    cleanup = null;
  }
  const { path, query } = parseHash();
  const match = ROUTES.map(([pattern, section, page]) => [path.match(pattern), section, page])
    .find(([found]) => found);
  const view = h("div", { class: "view" });
  let done = null;
  main.setAttribute("aria-busy", "true");
  if (match) {
    const [found, section, page] = match;
    for (const link of document.querySelectorAll("nav a")) {
      link.toggleAttribute("aria-current", link.dataset.nav === section);
    }
    try {
      done = (await page(view, found.slice(1).map(decodeURIComponent), pageContext(current, query)))
        || null;
    } catch (error) {
      mount(view, showError(error));
    }
  } else {
    mount(view, message("empty", "No such page", `Nothing lives at #${path}.`),
      h("p", {}, h("a", { href: "#/" }, "Back to the market")));
  }
  if (current !== navigation) {
    if (done) done();  // the member moved on while this page loaded
    return;
  }
  cleanup = done;
  main.replaceChildren(view);
  main.removeAttribute("aria-busy");
  // Keyboard and screen reader users land on the new content, or on the field a form marks.
  const preferred = view.querySelector("[data-autofocus]");
  if (preferred) preferred.focus();
  else main.focus({ preventScroll: true });
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
        "The login address carries the node's API token once; the browser then keeps a ",
        "session (not the token) in a cookie that scripts cannot read. Sessions last 30 days.")));
}

async function start() {
  const main = document.getElementById("main");
  // The skip link's "#main" would be taken for a route: move the focus ourselves.
  document.querySelector(".skip").addEventListener("click", (event) => {
    event.preventDefault();
    main.focus();
  });
  try {
    me = await get("/api/v1/node");
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
  startEvents(() => {
    navigation += 1;  // whatever page is open stops updating
    loggedOut(main);
  });
  // The unread badge follows direct-message events wherever the member is.
  const badge = document.getElementById("unread");
  const showUnread = () => messages.unreadCount().then((count) => {
    badge.textContent = count ? String(count) : "";
    badge.hidden = !count;
    badge.setAttribute("aria-label", `${count} unread`);
  }).catch(() => {});
  subscribe((type) => { if (type.startsWith("dm.")) showUnread(); });
  showUnread();
  window.addEventListener("hashchange", route);
  await route();
}

start();
