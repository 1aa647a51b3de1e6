// Live updates from /api/v1/events (server-sent events over the node's durable event log).
// When the stream breaks (node restarted, network gone) we reopen it ourselves, with backoff,
// asking for the events after the last one seen (?after=N): the node replays what the page
// missed. EventSource's own reconnection would send Last-Event-ID too, but it gives up for
// good on an HTTP error, and ours makes the resume point explicit in the URL.

const TYPES = [
  "listing.stored", "listing.deleted", "listing.expired",
  "message.stored", "message.deleted", "message.expired",
  "profile.stored", "profile.deleted", "profile.expired", "ballot.stored",
  "dao.created", "dao.vote", "dao.queued", "dao.executed", "dao.canceled",
  "dm.received", "dm.status",
  "receipt.stored", "bridge.stored",
];
const MAX_BACKOFF_MS = 15000;

const listeners = new Set();
let source = null;
let lastId = null;
let backoff = 500;

/** fn(type, data) for every event; returns a function that stops it. */
export function subscribe(fn) {
  listeners.add(fn);
  return () => listeners.delete(fn);
}

function setState(state, text) {
  const badge = document.getElementById("live");
  badge.dataset.state = state;
  badge.textContent = text;
}

let loggedOut = () => {};

/** Start the stream; `onLoggedOut` runs if the node stops taking this browser's session. */
export function start(onLoggedOut) {
  loggedOut = onLoggedOut;
  connect();
}

async function retry() {
  // An EventSource cannot see why it failed: ask whether the session is still good (a node
  // restarted with a new token, an expired session) before trying again.
  try {
    const response = await fetch("/api/v1/node", { credentials: "same-origin" });
    if (response.status === 401) {
      setState("offline", "logged out");
      loggedOut();
      return;
    }
  } catch {
    // The node is not answering: the stream will fail again and back off further.
  }
  connect();
}

function connect() {
  if (source) source.close();
  const url = lastId === null ? "/api/v1/events" : `/api/v1/events?after=${lastId}`;
  source = new EventSource(url);
  source.addEventListener("open", () => {
    backoff = 500;
    setState("live", "live");
  });
  source.addEventListener("error", () => {
    source.close();
    setState("offline", "offline, reconnecting…");
    setTimeout(retry, backoff);
    backoff = Math.min(backoff * 2, MAX_BACKOFF_MS);
  });
  // The stream's first event names where it starts, so even a page that has seen no event
  // yet resumes from there, not from whatever is newest when it reconnects.
  source.addEventListener("ready", (event) => {
    lastId = Number(event.lastEventId);
  });
  for (const type of TYPES) {
    source.addEventListener(type, (event) => {
      lastId = Number(event.lastEventId);
      let data = null;
      try {
        data = JSON.parse(event.data);
      } catch {
        return;
      }
      for (const fn of listeners) fn(type, data);
    });
  }
}

export function lastEventId() {
  return lastId;
}
