"""/api/v1/dao over a real gateway whose node talks to the in-process eth-tester chain: the
typed data served, a ballot signed by a wallet and submitted, the preview tally, bad input."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from eth_account import Account

from tests.contracts.chains import ETH, World, transfer_proposal
from tests.unit.gateway.harness import AUTH, anonymous, serve
from zion.contracts.client import sign_ballot

on_eth_tester = pytest.mark.parametrize("w3", ["eth-tester"], indirect=True)


@pytest.fixture
async def api(world: World, tmp_path: Path) -> AsyncIterator[httpx.AsyncClient]:
    async with serve(tmp_path, lambda: world.dao) as http:
        yield http


@on_eth_tester
async def test_info(api: httpx.AsyncClient, world: World) -> None:
    info = (await api.get("/api/v1/dao")).json()
    assert info["governor"] == world.dao.deployment.governor
    assert info["chain_id"] == world.dao.chain.chain_id


@on_eth_tester
async def test_a_wallet_signs_the_served_typed_data_and_the_ballot_is_published(
    api: httpx.AsyncClient, world: World
) -> None:
    proposal = transfer_proposal(world, Account.create().address)
    voter = world.voters[1]
    url = f"/api/v1/dao/proposals/{proposal.id}"
    typed = (
        await api.get(f"{url}/ballot", params={"voter": voter.address, "support": "for"})
    ).json()
    assert "EIP712Domain" in typed["types"]
    assert isinstance(typed["message"]["proposalId"], str)  # uint256 as decimal text
    signature = "0x" + sign_ballot(voter, typed).hex()
    body = {"voter": voter.address, "support": 1, "signature": signature}
    async with anonymous(api) as anon:
        unauthenticated = await anon.post(f"{url}/ballots", json=body)
    assert unauthenticated.status_code == 401
    response = await api.post(f"{url}/ballots", json=body, headers=AUTH)
    assert response.status_code == 201, response.text
    assert response.json()["voter"] == voter.address
    shown = (await api.get(url)).json()
    assert shown["state"] == "Active"
    assert shown["preview"] == {"against": "0", "for": str(50 * ETH), "abstain": "0"}
    assert shown["votes"]["for"] == "0"  # nothing on-chain until a relayer submits it


@on_eth_tester
async def test_bad_ballots_are_refused_with_a_reason(api: httpx.AsyncClient, world: World) -> None:
    proposal = transfer_proposal(world, Account.create().address)
    url = f"/api/v1/dao/proposals/{proposal.id}"
    voter = world.voters[0]
    typed = (await api.get(f"{url}/ballot", params={"voter": voter.address, "support": 1})).json()
    good = sign_ballot(voter, typed).hex()

    async def submit(**changes: object) -> httpx.Response:
        body = {"voter": voter.address, "support": 1, "signature": good, **changes}
        return await api.post(f"{url}/ballots", json=body, headers=AUTH)

    other_chain = dict(typed, domain=dict(typed["domain"], chainId="1"))
    assert (await submit(signature=sign_ballot(voter, other_chain).hex())).status_code == 422
    assert (await submit(signature="0x1234")).status_code == 422
    assert (await submit(support=0)).status_code == 422  # signed "for", sent as "against"
    nobody = Account.create()
    nobody_typed = (
        await api.get(f"{url}/ballot", params={"voter": nobody.address, "support": 1})
    ).json()
    refused = await api.post(
        f"{url}/ballots",
        json={
            "voter": nobody.address,
            "support": 1,
            "signature": sign_ballot(nobody, nobody_typed).hex(),
        },
        headers=AUTH,
    )
    assert refused.status_code == 422 and "no votes" in refused.json()["detail"]
    missing = await api.get("/api/v1/dao/proposals/12345")
    assert missing.status_code == 404
    assert (await api.get("/api/v1/dao/proposals/nope")).status_code == 400
    shown = (await api.get(url)).json()
    assert shown["preview"] == {"against": "0", "for": "0", "abstain": "0"}


async def test_without_a_chain_the_dao_routes_say_so(tmp_path: Path) -> None:
    async with serve(tmp_path, None) as http:
        response = await http.get("/api/v1/dao")
    assert response.status_code == 503
    assert "no chain configured" in response.json()["detail"]


@on_eth_tester
async def test_propose_queue_execute_through_the_api(world: World, tmp_path: Path) -> None:
    recipient = Account.create().address
    async with serve(tmp_path, lambda: world.dao, account=world.voters[0]) as api:
        action = {"target": recipient, "value": str(ETH // 4)}
        created = await api.post(
            "/api/v1/dao/proposals",
            json={"description": "A quarter ETH for the logo", "actions": [action]},
            headers=AUTH,
        )
        assert created.status_code == 201, created.text
        proposal_id = created.json()["id"]
        world.mine(2)
        for index in range(3):
            voter = world.voters[index]
            typed = world.dao.ballot_typed_data(int(proposal_id), 1, voter.address)
            world.dao.cast_vote_by_sig(
                world.relayer, int(proposal_id), 1, voter.address, sign_ballot(voter, typed)
            )
        world.mine(10)
        queued = await api.post(f"/api/v1/dao/proposals/{proposal_id}/queue", headers=AUTH)
        assert queued.status_code == 200 and queued.json()["state"] == "Queued"
        too_early = await api.post(f"/api/v1/dao/proposals/{proposal_id}/execute", headers=AUTH)
        assert too_early.status_code == 422
        assert "TimelockUnexpectedOperationState" in too_early.json()["detail"]
        world.advance_time(61)
        world.mine(1)
        executed = await api.post(f"/api/v1/dao/proposals/{proposal_id}/execute", headers=AUTH)
        assert executed.json()["state"] == "Executed"
    assert world.w3.eth.get_balance(recipient) == ETH // 4


@on_eth_tester
async def test_the_node_votes_with_its_own_wallet(world: World, tmp_path: Path) -> None:
    proposal = transfer_proposal(world, Account.create().address)
    voter = world.voters[2]
    async with serve(tmp_path, lambda: world.dao, account=voter) as api:
        assert (await api.get("/api/v1/dao")).json()["wallet"] == voter.address
        url = f"/api/v1/dao/proposals/{proposal.id}"
        bad = await api.post(f"{url}/vote", json={"support": "maybe"})
        assert bad.status_code == 422
        voted = await api.post(f"{url}/vote", json={"support": "against"})
        assert voted.status_code == 201, voted.text
        assert voted.json()["voter"] == voter.address and voted.json()["support"] == 0
        shown = (await api.get(url)).json()
    assert int(shown["preview"]["against"]) > 0 and shown["preview"]["for"] == "0"


@on_eth_tester
async def test_without_a_wallet_the_node_cannot_vote(api: httpx.AsyncClient) -> None:
    proposal_id = "1" * 20
    no_wallet = await api.post(f"/api/v1/dao/proposals/{proposal_id}/vote", json={"support": 1})
    assert no_wallet.status_code == 503 and "wallet" in no_wallet.json()["detail"]


@on_eth_tester
async def test_without_a_wallet_the_node_cannot_propose(api: httpx.AsyncClient) -> None:
    response = await api.post(
        "/api/v1/dao/proposals",
        json={"description": "x", "actions": [{"target": "0x" + "11" * 20}]},
        headers=AUTH,
    )
    assert response.status_code == 503 and "no unlocked wallet" in response.json()["detail"]
