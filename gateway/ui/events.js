// Live updates from /api/v1/events (server-sent events over the node's durable event log).
// When the stream breaks (node restarted, network gone) we reopen it ourselves, with backoff,
// asking for the events after the last one seen (?after=N): the node replays what the page
// missed. EventSource's own reconnection would send Last-Event-ID too, but it gives up for
// good on an HTTP error, and ours makes the resume point explicit in the URL.

const TYPES = [
  "listing.stored", "listing.deleted", "listing.expired",
  "message.stored", "message.deleted", "message.expired",
  "profile.stored", "ballot.stored",
  "dao.created", "dao.vote", "dao.queued", "dao.executed", "dao.canceled",
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

export function connect() {
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
    setTimeout(connect, backoff);
    backoff = Math.min(backoff * 2, MAX_BACKOFF_MS);
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
