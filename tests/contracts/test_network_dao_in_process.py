"""The network flow on the in-process eth-tester chain: two Zion nodes run in the test process
(eth-tester cannot be reached from another one), with the chain handed to them directly
instead of through [chain] rpc_url. Ballots from three members on two nodes gossip; node A
relays them; queue and execute go through A's API; both APIs show the outcome."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
import trio
from eth_account import Account

from tests.contracts.chains import ETH, SETTINGS, World, transfer_proposal
from tests.unit.gateway.harness import HTTP_TIMEOUT_S
from zion.contracts.client import sign_ballot
from zion.node.config import load
from zion.node.daemon import ZionNode
from zion.node.home import NodeHome
from zion.node.wallet import Wallets

PASSWORD = "a long enough password"


def make_node(world: World, home: Path, password_file: Path, **chain: Any) -> ZionNode:
    node_home = NodeHome(home)
    node_home.init()
    deployment = world.dao.deployment
    config = load(
        None,
        {
            "network": {"listen": ["/ip4/127.0.0.1/tcp/0"], "mdns": False, "dht": False,
                        "bootstrap": chain.pop("bootstrap", [])},
            "gateway": {"listen": "127.0.0.1:0"},
            "chain": {"rpc_url": "http://in-process.invalid", "token": deployment.token,
                      "governor": deployment.governor, "timelock": deployment.timelock,
                      "confirmations": 0, "relayer_password_file": str(password_file), **chain},
        },
    )  # fmt: skip
    return ZionNode(node_home, config, connect_chain=lambda: world.dao)


async def until(condition: Callable[[], Awaitable[bool]], seconds: float, what: str) -> None:
    with trio.move_on_after(seconds):
        while not await condition():
            await trio.sleep(0.1)
        return
    raise AssertionError(f"timed out waiting for {what}")


@pytest.mark.slow
@pytest.mark.parametrize("w3", ["eth-tester"], indirect=True)
async def test_members_vote_on_two_nodes_on_the_in_process_chain(
    world: World, tmp_path: Path
) -> None:
    # The nodes reach eth-tester from worker threads: tests/contracts/chains.py serializes it.
    password_file = tmp_path / "password"
    password_file.write_text(PASSWORD)
    Wallets(NodeHome(tmp_path / "a")).import_key(bytes(world.relayer.key).hex(), PASSWORD)
    node_a = make_node(world, tmp_path / "a", password_file, relayer=True)
    recipient = Account.create().address
    async with trio.open_nursery() as nursery:
        url_a = await nursery.start(node_a.run)
        node_b = make_node(world, tmp_path / "b", password_file, bootstrap=node_a.network.addrs())
        url_b = await nursery.start(node_b.run)
        auth_a = {"Authorization": f"Bearer {node_a.token}"}
        auth_b = {"Authorization": f"Bearer {node_b.token}"}
        async with (
            httpx.AsyncClient(base_url=url_a, headers=auth_a, timeout=HTTP_TIMEOUT_S) as a,
            httpx.AsyncClient(base_url=url_b, headers=auth_b, timeout=HTTP_TIMEOUT_S) as b,
        ):

            async def connected() -> bool:
                return node_a.peer_id in node_b.network.connected_peers()

            await until(connected, 15, "b connected to a")
            proposal = transfer_proposal(world, recipient)
            url = f"/api/v1/dao/proposals/{proposal.id}"
            for api, auth, index, support in (
                (a, auth_a, 0, 1),
                (a, auth_a, 1, 0),
                (b, auth_b, 2, 1),
            ):
                voter = world.voters[index]
                typed = (
                    await api.get(
                        f"{url}/ballot", params={"voter": voter.address, "support": support}
                    )
                ).json()
                body = {"voter": voter.address, "support": support,
                        "signature": sign_ballot(voter, typed).hex()}  # fmt: skip
                assert (
                    await api.post(f"{url}/ballots", json=body, headers=auth)
                ).status_code == 201

            async def counted() -> bool:
                votes = (await b.get(url)).json()["votes"]
                return bool(
                    votes == {"against": str(50 * ETH), "for": str(130 * ETH), "abstain": "0"}
                )

            await until(counted, 30, "all three ballots relayed by a and counted on-chain")
            world.mine(SETTINGS.voting_period_blocks)
            queued = await a.post(f"{url}/queue", headers=auth_a)
            assert queued.json()["state"] == "Queued", queued.text
            world.advance_time(SETTINGS.timelock_delay_s + 1)
            world.mine(1)
            assert (await a.post(f"{url}/execute", headers=auth_a)).json()["state"] == "Executed"
            assert (await b.get(url)).json()["state"] == "Executed"
            assert world.w3.eth.get_balance(recipient) == 1 * ETH

            async def filed() -> bool:
                items = (await b.get("/api/v1/dao/proposals")).json()["items"]
                return bool(items and items[0]["last_event"] == "executed")

            await until(filed, 15, "b's chain watcher filed the execution")
        nursery.cancel_scope.cancel()
