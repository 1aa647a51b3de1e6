// Small DOM helpers. Text always goes in as text nodes (never parsed as HTML), so record contents
// from the network cannot inject markup.

/** h("a", {href: "#/", class: "x", onclick: fn}, "text", child, [more]) */
export function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs || {})) {
    if (value === null || value === undefined || value === false) continue;
    if (key === "class") el.className = value;
    else if (key.startsWith("on") && typeof value === "function") {
      el.addEventListener(key.slice(2), value);
    } else if (key === "dataset") Object.assign(el.dataset, value);
    else if (key === "value") el.value = value;
    else el.setAttribute(key, value === true ? "" : String(value));
  }
  append(el, children);
  return el;
}

function append(el, children) {
  for (const child of children) {
    if (child === null || child === undefined || child === false) continue;
    if (Array.isArray(child)) append(el, child);
    else if (child instanceof Node) el.appendChild(child);
    else el.appendChild(document.createTextNode(String(child)));
  }
}

/** Replace everything inside `el`. */
export function mount(el, ...children) {
  el.replaceChildren();
  append(el, children);
  return el;
}

// Currencies without minor units (as the CLI's list): amounts are whole units.
const ZERO_DECIMAL = new Set([
  "BIF", "CLP", "DJF", "GNF", "ISK", "JPY", "KMF", "KRW", "PYG", "RWF", "UGX", "VND", "VUV",
  "XAF", "XOF", "XPF",
]);

export function decimals(currency) {
  return ZERO_DECIMAL.has(currency) ? 0 : 2;
}

/** {amount: minor units, currency} as "250.00 EUR". */
export function formatPrice(price) {
  if (!price) return "";
  const places = decimals(price.currency);
  const value = (price.amount / 10 ** places).toFixed(places);
  return `${value} ${price.currency}`;
}

/** "12.50" in `currency` as minor units, or null when it is not a valid price. */
export function parsePrice(text, currency) {
  const places = decimals(currency);
  const pattern = places ? /^\d+(\.\d{1,2})?$/ : /^\d+$/;
  const trimmed = String(text).trim();
  if (!pattern.test(trimmed)) return null;
  const [whole, fraction = ""] = trimmed.split(".");
  return Number(whole) * 10 ** places + Number(fraction.padEnd(places, "0") || 0);
}

export function timeAgo(ms) {
  const seconds = Math.max(0, Math.round((Date.now() - ms) / 1000));
  if (seconds < 60) return "just now";
  const minutes = Math.round(seconds / 60);
  if (minutes < 60) return `${minutes} min ago`;
  const hours = Math.round(minutes / 60);
  if (hours < 48) return `${hours} h ago`;
  return new Date(ms).toLocaleDateString();
}

export function shortId(id, keep = 6) {
  return id && id.length > keep * 2 + 1 ? `${id.slice(0, keep)}…${id.slice(-keep)}` : id;
}

export function bytes(n) {
  const units = ["B", "KiB", "MiB", "GiB", "TiB"];
  let value = n;
  let unit = 0;
  while (value >= 1024 && unit < units.length - 1) {
    value /= 1024;
    unit += 1;
  }
  return `${unit ? value.toFixed(1) : value} ${units[unit]}`;
}

/** An error or empty state in a page. */
export function message(kind, title, detail) {
  return h("div", { class: `state state-${kind}`, role: kind === "error" ? "alert" : null },
    h("p", { class: "state-title" }, title),
    detail ? h("p", { class: "state-detail" }, detail) : null);
}

/** The page-wide notice bar (for things like "logged out"); null hides it. */
export function notice(text) {
  const bar = document.getElementById("notice");
  if (!text) {
    bar.hidden = true;
    return;
  }
  mount(bar, text);
  bar.hidden = false;
}
