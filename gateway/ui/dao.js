// The DAO: proposals with on-chain and preview tallies, voting with the browser's wallet
// (EIP-1193 window.ethereum, eth_signTypedData_v4 on the typed data the node serves) or with
// the node's own wallet, and new proposals.

import { ApiError, get, post } from "/ui/api.js";
import { h, message, mount, shortId } from "/ui/ui.js";

const CHOICES = [["for", 1], ["against", 0], ["abstain", 2]];
const DAO_EVENTS = /^(dao\.|ballot\.)/;

async function daoInfo(view) {
  try {
    return await get("/api/v1/dao");
  } catch (error) {
    if (error instanceof ApiError && error.status === 503) {
      const unconfigured = error.message.startsWith("no chain configured");
      mount(view, h("h1", {}, "DAO"), unconfigured
        ? message("empty", "No chain configured",
          "This node is not connected to a DAO: set [chain] rpc_url, token, governor and " +
          "timelock in its config.toml (zion dao deploy writes them) and restart it.")
        : message("error", "The DAO cannot be reached", error.message));
      return null;
    }
    throw error;
  }
}

function tally(votes, label) {
  const total = CHOICES.reduce((sum, [name]) => sum + BigInt(votes[name] || "0"), 0n);
  return h("div", { class: "tally", "data-kind": label },
    h("p", { class: "label" }, label),
    CHOICES.map(([name]) => {
      const value = BigInt(votes[name] || "0");
      const share = total ? Number((value * 1000n) / total) / 10 : 0;
      return h("div", { class: "bar-row" },
        h("span", {}, name),
        h("span", { class: "bar" }, h("span", { class: `fill fill-${name}`, style: null,
          "data-share": share })),
        h("span", { class: "count", "data-choice": name }, formatVotes(value)));
    }));
}

function formatVotes(wei) {
  // Token amounts have 18 decimals; whole tokens read better.
  const whole = wei / 10n ** 18n;
  const rest = wei % 10n ** 18n;
  return rest === 0n ? whole.toString() : `${whole}.${rest.toString().padStart(18, "0").slice(0, 2)}`;
}

// CSP forbids inline styles: bar widths are set from script, which is allowed.
function sizeBars(root) {
  for (const fill of root.querySelectorAll(".fill")) fill.style.width = `${fill.dataset.share}%`;
}

/** #/dao */
export async function proposals(view, _match, ctx) {
  const info = await daoInfo(view);
  if (!info) return;
  async function render() {
    const { items } = await get("/api/v1/dao/proposals");
    mount(view,
      h("div", { class: "page-head" }, h("h1", {}, "DAO proposals"),
        h("a", { href: "#/dao/new", class: "button" }, "New proposal")),
      h("p", { class: "muted" }, `Governor ${info.governor} on chain ${info.chain_id}`),
      items.length
        ? h("ul", { class: "proposals" }, items.map((p) => h("li", { class: "card" },
          h("a", { href: `#/dao/${p.id}` }, h("strong", {}, p.description.split("\n")[0] || p.id)),
          h("span", { class: "state" }, `last event: ${p.last_event}`),
          tally(p.votes, "on-chain"))))
        : message("empty", "No proposals yet", "Proposals appear here once they are on-chain."));
    sizeBars(view);
  }
  await render();
  const rerender = ctx.later(() => render().catch(() => {}), 300);
  return ctx.live((type) => { if (DAO_EVENTS.test(type)) rerender(); });
}

/** #/dao/ID */
export async function proposal(view, [id], ctx) {
  const info = await daoInfo(view);
  if (!info) return;
  const status = h("p", { class: "vote-status", role: "status", "aria-live": "polite" });

  async function voteWithBrowser(support) {
    if (!window.ethereum) throw new Error("No browser wallet found (window.ethereum).");
    const [voter] = await window.ethereum.request({ method: "eth_requestAccounts" });
    const typed = await get(`/api/v1/dao/proposals/${id}/ballot`, { voter, support });
    status.textContent = `Sign the ballot in your wallet (${shortId(voter, 4)})…`;
    const signature = await window.ethereum.request({
      method: "eth_signTypedData_v4", params: [voter, JSON.stringify(typed)],
    });
    return post(`/api/v1/dao/proposals/${id}/ballots`, { voter, support, signature });
  }

  let voting = false;
  let open = false;
  function setVoting(busy) {
    voting = busy;
    for (const button of view.querySelectorAll("button.vote")) button.disabled = busy || !open;
  }

  async function vote(how, support) {
    if (voting) return;
    setVoting(true);
    status.textContent = "Voting…";
    let ballot;
    try {
      ballot = how === "wallet"
        ? await voteWithBrowser(support)
        : await post(`/api/v1/dao/proposals/${id}/vote`, { support });
    } catch (error) {
      status.textContent = `Vote failed: ${error.message}`;
      return;
    } finally {
      setVoting(false);
    }
    status.textContent = `Ballot from ${shortId(ballot.voter, 4)} sent to the network; ` +
      "a relayer puts it on-chain.";
    render().catch(() => {});  // the vote is out even if this refresh fails
  }

  async function render() {
    const p = await get(`/api/v1/dao/proposals/${id}`);
    const listed = (await get("/api/v1/dao/proposals")).items.find((item) => item.id === id);
    open = p.state === "Active";
    const buttons = (how) => CHOICES.map(([name, support]) =>
      h("button", { type: "button", class: `vote vote-${name}`, "data-vote": name, "data-how": how,
        disabled: !open || voting, onclick: () => vote(how, support) }, name));
    mount(view,
      h("p", {}, h("a", { href: "#/dao" }, "← Proposals")),
      h("h1", {}, listed ? listed.description.split("\n")[0] : `Proposal ${shortId(id, 8)}`),
      listed && listed.description.includes("\n")
        ? h("p", { class: "description" }, listed.description) : null,
      h("p", {}, "State: ", h("strong", { id: "proposal-state" }, p.state),
        ` · voting ends at block ${p.deadline}`),
      h("div", { class: "tallies" }, tally(p.votes, "on-chain"), tally(p.preview, "preview")),
      h("p", { class: "muted" }, "Preview: the signed ballots this node has seen on the network, ",
        "counted before a relayer brings them on-chain."),
      h("section", { class: "card" },
        h("h2", {}, "Vote"),
        open ? null : h("p", {}, "Voting is closed for this proposal."),
        h("div", { class: "vote-row" }, h("span", {}, "With your browser wallet: "),
          window.ethereum ? buttons("wallet")
            : h("span", { class: "muted" }, "no wallet in this browser")),
        info.wallet
          ? h("div", { class: "vote-row" },
            h("span", {}, `With this node's wallet (${shortId(info.wallet, 4)}): `), buttons("node"))
          : null,
        status));
    sizeBars(view);
  }
  await render();
  const rerender = ctx.later(() => render().catch(() => {}), 300);
  return ctx.live((type) => { if (DAO_EVENTS.test(type)) rerender(); });
}

/** #/dao/new: a proposal sent from the node's wallet. */
export async function create(view) {
  const info = await daoInfo(view);
  if (!info) return;
  const error = h("p", { class: "form-error", role: "alert", hidden: true });
  const form = h("form", { class: "card editor" },
    h("label", {}, "Description", h("textarea", { name: "description", rows: 5, required: true })),
    h("label", {}, "Target address", h("input", { name: "target", value: info.timelock,
      pattern: "0x[0-9a-fA-F]{40}" })),
    h("label", {}, "Value (wei)", h("input", { name: "value", value: "0", inputmode: "numeric" })),
    h("label", {}, "Calldata (0x-hex)", h("input", { name: "calldata", value: "0x" })),
    info.wallet ? null : h("p", { class: "muted" },
      "This node has no unlocked wallet, so it cannot send the proposal: use ",
      h("code", {}, "zion dao propose"), " or configure the relayer wallet."),
    error,
    h("button", { type: "submit", disabled: !info.wallet }, "Propose"));
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const data = new FormData(form);
    try {
      const made = await post("/api/v1/dao/proposals", {
        description: data.get("description"),
        actions: [{ target: data.get("target"), value: data.get("value"),
          calldata: data.get("calldata") }],
      });
      location.hash = `#/dao/${made.id}`;
    } catch (failure) {
      error.textContent = failure.message;
      error.hidden = false;
    }
  });
  mount(view, h("h1", {}, "New proposal"), form);
}
