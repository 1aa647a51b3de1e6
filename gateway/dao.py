"""`/api/v1/dao/...`: the DAO through the node (chain reads, typed data to sign, ballots)."""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from zion.gateway.bodies import parse_json_object
from zion.gateway.services import BadRequest, Governance, InvalidInput
from zion.gateway.views import ballot_json
from zion.protocols.records import SUPPORT_NAMES


def routes(governance: Governance) -> list[Route]:
    api = _DaoApi(governance)
    return [
        Route("/api/v1/dao", api.info, methods=["GET"]),
        Route("/api/v1/dao/proposals", api.proposals, methods=["GET"]),
        Route("/api/v1/dao/proposals", api.propose, methods=["POST"]),
        Route("/api/v1/dao/proposals/{proposal_id}/queue", api.queue, methods=["POST"]),
        Route("/api/v1/dao/proposals/{proposal_id}/execute", api.execute, methods=["POST"]),
        Route("/api/v1/dao/proposals/{proposal_id}", api.proposal, methods=["GET"]),
        Route("/api/v1/dao/proposals/{proposal_id}/ballot", api.ballot, methods=["GET"]),
        Route("/api/v1/dao/proposals/{proposal_id}/ballots", api.submit, methods=["POST"]),
        Route("/api/v1/dao/proposals/{proposal_id}/vote", api.vote, methods=["POST"]),
    ]


def _proposal_id(request: Request) -> int:
    text = request.path_params["proposal_id"]
    if not text.isdigit() or len(text) > 78 or int(text) >= 2**256:
        raise BadRequest("a proposal ID is a decimal uint256")
    return int(text)


def _support(value: Any) -> int:
    if isinstance(value, str) and value in SUPPORT_NAMES:
        return SUPPORT_NAMES.index(value)
    if isinstance(value, str) and value.isdigit():
        value = int(value)
    if isinstance(value, int) and not isinstance(value, bool) and value in (0, 1, 2):
        return value
    raise InvalidInput("support must be 0/against, 1/for or 2/abstain")


class _DaoApi:
    def __init__(self, governance: Governance) -> None:
        self.governance = governance

    async def info(self, _: Request) -> Response:
        return JSONResponse(await self.governance.info())

    async def proposals(self, _: Request) -> Response:
        return JSONResponse({"items": await self.governance.proposals()})

    async def propose(self, request: Request) -> Response:
        """{"description", "actions": [{"target", "value" (wei, decimal text), "calldata"
        (0x-hex, optional)}]}, sent from the node's wallet."""
        body = parse_json_object(await request.body())
        description, actions = body.get("description"), body.get("actions")
        if not isinstance(description, str) or not isinstance(actions, list) or not actions:
            raise InvalidInput("description (text) and actions (a non-empty list) are required")
        targets, values, calldatas = [], [], []
        for action in actions:
            if not isinstance(action, dict) or not isinstance(action.get("target"), str):
                raise InvalidInput("each action needs a target address")
            value, calldata = str(action.get("value", "0")), str(action.get("calldata", "0x"))
            if not value.isdigit():
                raise InvalidInput("an action's value is wei as decimal text")
            try:
                data = bytes.fromhex(calldata.removeprefix("0x"))
            except ValueError:
                raise InvalidInput("an action's calldata is 0x-hex") from None
            targets.append(action["target"])
            values.append(int(value))
            calldatas.append(data)
        result = await self.governance.propose(targets, values, calldatas, description)
        return JSONResponse(result, status_code=201)

    async def queue(self, request: Request) -> Response:
        return JSONResponse(await self.governance.act(_proposal_id(request), "queue"))

    async def execute(self, request: Request) -> Response:
        return JSONResponse(await self.governance.act(_proposal_id(request), "execute"))

    async def proposal(self, request: Request) -> Response:
        return JSONResponse(await self.governance.proposal(_proposal_id(request)))

    async def ballot(self, request: Request) -> Response:
        """The exact typed data a wallet signs with eth_signTypedData_v4."""
        voter = request.query_params.get("voter", "")
        support = _support(request.query_params.get("support"))
        typed = await self.governance.ballot_typed_data(_proposal_id(request), voter, support)
        return JSONResponse(typed)

    async def submit(self, request: Request) -> Response:
        body = parse_json_object(await request.body())
        voter, signature = body.get("voter"), body.get("signature")
        if not isinstance(voter, str) or not isinstance(signature, str):
            raise InvalidInput("voter and signature (0x-hex) are required")
        try:
            raw = bytes.fromhex(signature.removeprefix("0x"))
        except ValueError:
            raise InvalidInput("signature must be hex") from None
        record = await self.governance.submit_ballot(
            _proposal_id(request), voter, _support(body.get("support")), raw
        )
        return JSONResponse(ballot_json(record), status_code=201)

    async def vote(self, request: Request) -> Response:
        """{"support"}: a ballot signed by the node's own wallet (see GET /api/v1/dao)."""
        body = parse_json_object(await request.body())
        record = await self.governance.vote(_proposal_id(request), _support(body.get("support")))
        return JSONResponse(ballot_json(record), status_code=201)
