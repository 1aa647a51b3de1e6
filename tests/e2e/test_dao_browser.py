"""Voting from the web UI with a browser wallet, on an anvil devnet: a small EIP-1193
provider (window.ethereum) added to the page signs eth_signTypedData_v4 with a test key
through eth-account; the ballot goes from B's UI to the network, A relays it on-chain, and
both UIs show the tally move (preview first, then on-chain)."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

from eth_account import Account
from eth_account.messages import encode_typed_data
from eth_account.signers.local import LocalAccount
from playwright.sync_api import BrowserContext, Page, expect

from tests.contracts.conftest import anvil_url, node_binary
from tests.contracts.test_cli_dao import fund
from tests.contracts.test_network_dao import rpc, share_dao
from tests.e2e.harness import login, shot, wait_for
from tests.integration.nodes import Spawn, wait_until
from tests.integration.test_cli import zion
from zion.node.governance import connect_dao

__all__ = ["anvil_url", "node_binary"]  # fixtures, used by name
PROPAGATION_S = 40.0
#: The test's wallet: the page's window.ethereum asks the test to sign with its key.
PROVIDER_SCRIPT = """
(() => {
  const account = %(address)s;
  window.ethereum = {
    isZionTestWallet: true,
    async request({ method, params }) {
      if (method === "eth_requestAccounts" || method === "eth_accounts") return [account];
      if (method === "eth_chainId") return %(chain_id)s;
      if (method === "eth_signTypedData_v4") {
        if (params[0].toLowerCase() !== account.toLowerCase()) {
          throw Object.assign(new Error("unknown account"), { code: 4100 });
        }
        return window.zionTestSign(params[1]);
      }
      throw Object.assign(new Error(`unsupported method ${method}`), { code: 4200 });
    },
  };
})();
"""


def with_wallet(context: BrowserContext, voter: LocalAccount, chain_id: int) -> None:
    """Give every page of ``context`` an EIP-1193 wallet holding ``voter``'s key."""

    def sign(typed_json: str) -> str:
        typed = json.loads(typed_json)
        signed = voter.sign_message(encode_typed_data(full_message=typed))
        return "0x" + bytes(signed.signature).hex()

    context.expose_function("zionTestSign", sign)
    context.add_init_script(
        PROVIDER_SCRIPT
        % {"address": json.dumps(voter.address), "chain_id": json.dumps(hex(chain_id))}
    )


def tally(page: Page, kind: str, choice: str) -> str:
    return page.locator(f'.tally[data-kind="{kind}"] .count[data-choice="{choice}"]').inner_text()


def test_a_browser_wallet_votes_and_the_tally_moves(
    anvil_url: str,
    spawn: Spawn,
    new_context: Callable[[], BrowserContext],
    tmp_path: Path,
) -> None:
    password = tmp_path / "password"
    password.write_text("a long enough password")
    pw = ["--password-file", str(password)]
    home_a, home_b = tmp_path / "a", tmp_path / "b"
    zion(home_a, "init")
    zion(home_b, "init")
    relayer = zion(home_a, "wallet", "new", *pw).stdout.strip()
    voter: LocalAccount = Account.create()
    for address in (relayer, voter.address):
        fund(anvil_url, address)
    zion(
        home_a, "dao", "deploy", "--rpc", anvil_url, "--voting-period-blocks", "200",
        f"--holder={voter.address}=100", f"--holder={relayer}=10", *pw,
    )  # fmt: skip
    chain = share_dao(home_a, home_b, password)
    dao = connect_dao(chain)
    dao.delegate(voter)
    zion(home_a, "dao", "delegate", *pw)  # the relayer votes too, from A's own wallet
    proposal = zion(
        home_a, "dao", "propose", "--to", Account.create().address, "--value", "0",
        "--description", "Fund the community meetup", *pw,
    ).stdout.strip()  # fmt: skip
    rpc(anvil_url, "anvil_mine", ["0x4"])  # active, and the proposal confirmed for the watchers

    a = spawn("a")
    b = spawn("b", bootstrap=[a.address])
    wait_until(lambda: b.connected_to(a.peer_id), 15, "b connected to a")

    pages = {}
    for name, node in (("a", a), ("b", b)):
        context = new_context()
        if name == "b":
            with_wallet(context, voter, dao.chain.chain_id)
        page = context.new_page()
        page.set_viewport_size({"width": 1200, "height": 900})
        login(page, node)
        page.goto(f"{node.base_url}/#/dao")
        expect(page.get_by_role("link", name="Fund the community meetup")).to_be_visible(
            timeout=PROPAGATION_S * 1000
        )
        page.get_by_role("link", name="Fund the community meetup").click()
        expect(page.locator("#proposal-state")).to_have_text("Active")
        pages[name] = page
    page_a, page_b = pages["a"], pages["b"]
    shot(page_b, "dao-proposal")
    assert tally(page_b, "preview", "for") == tally(page_b, "on-chain", "for") == "0"
    # A has no browser wallet but a node wallet; B's node has no wallet of its own.
    expect(page_a.get_by_text("no wallet in this browser")).to_be_visible()
    expect(page_b.locator('[data-how="node"]')).to_have_count(0)

    page_b.locator('button[data-how="wallet"][data-vote="for"]').click()
    expect(page_b.locator(".vote-status")).to_contain_text("sent to the network")
    # The ballot counts at once in B's preview, then reaches A by gossip.
    expect(page_b.locator('.tally[data-kind="preview"] .count[data-choice="for"]')).to_have_text(
        "100"
    )
    expect(page_a.locator('.tally[data-kind="preview"] .count[data-choice="for"]')).to_have_text(
        "100", timeout=PROPAGATION_S * 1000
    )

    # A relays it on-chain; the watchers report it once blocks confirm it, and both pages
    # re-read the proposal.
    def counted_on_chain() -> bool:
        rpc(anvil_url, "anvil_mine", ["0x1"])
        return tally(page_a, "on-chain", "for") == tally(page_b, "on-chain", "for") == "100"

    wait_for(page_b, counted_on_chain, PROPAGATION_S, "both UIs to show the on-chain tally")
    assert dao.status(int(proposal)).votes_for == 100 * 10**18
    shot(page_b, "dao-voted")

    # A votes with the node's own wallet; B sees the preview move.
    page_a.locator('button[data-how="node"][data-vote="against"]').click()
    expect(page_a.locator(".vote-status")).to_contain_text("sent to the network")
    expect(
        page_b.locator('.tally[data-kind="preview"] .count[data-choice="against"]')
    ).to_have_text("10", timeout=PROPAGATION_S * 1000)

    # And A proposes from its UI: the new proposal opens, pending, and is listed once the
    # watcher has confirmed it.
    page_a.goto(f"{a.base_url}/#/dao/new")
    page_a.get_by_label("Description").fill("Buy a projector for the meetup")
    page_a.get_by_role("button", name="Propose").click()
    expect(page_a.locator("#proposal-state")).to_have_text("Pending")

    def listed() -> bool:
        rpc(anvil_url, "anvil_mine", ["0x1"])
        return page_b.get_by_role("link", name="Buy a projector for the meetup").count() == 1

    page_b.goto(f"{b.base_url}/#/dao")
    wait_for(page_b, listed, PROPAGATION_S, "B's UI to list the new proposal")
    shot(page_b, "dao-proposals")
