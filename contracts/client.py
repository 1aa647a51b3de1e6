"""The chain client: deploy Zion's DAO, read it, and send its transactions (web3 8, eth-account).

Synchronous by design (web3's async provider is asyncio-only): the node calls it from worker
threads. Every transaction is simulated first (eth_estimateGas), so a revert is reported with
the contract error's name before anything is signed or sent; transactions are signed locally
with the member's key (keystores never leave the node) and sent raw.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Final

from eth_account import Account
from eth_account.messages import encode_typed_data
from eth_account.signers.local import LocalAccount
from eth_utils.address import to_checksum_address
from eth_utils.crypto import keccak
from web3 import Web3
from web3.contract.contract import Contract, ContractConstructor, ContractFunction
from web3.exceptions import Web3RPCError
from web3.types import TxReceipt

from zion.contracts import artifacts
from zion.contracts.errors import ChainError, ContractRevert
from zion.contracts.reverts import decode_revert, revert_data
from zion.protocols import records

#: Support values of GovernorCountingSimple.
AGAINST: Final = 0
FOR: Final = 1
ABSTAIN: Final = 2
#: IGovernor.ProposalState, in order.
PROPOSAL_STATES: Final = (
    "Pending",
    "Active",
    "Canceled",
    "Defeated",
    "Succeeded",
    "Queued",
    "Expired",
    "Executed",
)
RECEIPT_TIMEOUT_S: Final = 120.0
_ZERO_ADDRESS: Final = "0x0000000000000000000000000000000000000000"


@dataclass(frozen=True)
class GovernanceSettings:
    """Parameters fixed at deployment. Delay and period count blocks (the token's clock)."""

    voting_delay_blocks: int = 1
    voting_period_blocks: int = 50
    proposal_threshold: int = 0
    quorum_percent: int = 4
    timelock_delay_s: int = 60

    def __post_init__(self) -> None:
        if not 0 <= self.voting_delay_blocks < 2**48:
            raise ValueError("voting_delay_blocks out of range")
        if not 1 <= self.voting_period_blocks < 2**32:
            raise ValueError("voting_period_blocks must be at least 1")
        if not 0 <= self.quorum_percent <= 100:
            raise ValueError("quorum_percent must be 0..100")
        if self.proposal_threshold < 0 or self.timelock_delay_s < 0:
            raise ValueError("proposal_threshold and timelock_delay_s must not be negative")


@dataclass(frozen=True)
class Deployment:
    chain_id: int
    token: str
    timelock: str
    governor: str
    block: int


@dataclass(frozen=True)
class Proposal:
    """What identifies a proposal on-chain: its actions and its description."""

    id: int
    targets: tuple[str, ...]
    values: tuple[int, ...]
    calldatas: tuple[bytes, ...]
    description: str

    @property
    def description_hash(self) -> bytes:
        return keccak(text=self.description)


@dataclass(frozen=True)
class ProposalStatus:
    id: int
    state: str
    snapshot: int
    deadline: int
    votes_against: int
    votes_for: int
    votes_abstain: int


class Chain:
    """A connection to one chain, and the transactions sent on it."""

    def __init__(self, w3: Web3) -> None:
        self.w3 = w3

    @classmethod
    def connect(cls, rpc_url: str) -> Chain:
        w3 = Web3(Web3.HTTPProvider(rpc_url, request_kwargs={"timeout": 30}))
        try:
            _ = w3.eth.chain_id
        except Exception as exc:
            raise ChainError(f"no Ethereum node answers at {rpc_url}: {exc}") from None
        return cls(w3)

    @property
    def chain_id(self) -> int:
        return int(self.w3.eth.chain_id)

    def transact(
        self, account: LocalAccount, call: ContractFunction | ContractConstructor, value: int = 0
    ) -> TxReceipt:
        """Simulate, sign, send, wait. ContractRevert (nothing sent) if the call would revert."""
        params: dict[str, Any] = {"from": account.address, "value": value}
        try:
            gas = call.estimate_gas(params)  # type: ignore[arg-type]
        except Exception as exc:
            raise _as_revert(exc) from None
        params |= {"gas": gas + gas // 5, "chainId": self.chain_id}
        # Two threads of one process sending from one account (the relayer and a proposal
        # from the UI) would take the same nonce and one be refused ("nonce too low").
        with _sender_lock(account.address):
            params["nonce"] = self.w3.eth.get_transaction_count(account.address, "pending")
            tx = call.build_transaction(params)  # type: ignore[arg-type]
            signed = account.sign_transaction(tx)
            try:
                tx_hash = self.w3.eth.send_raw_transaction(signed.raw_transaction)
            except Web3RPCError as exc:  # nonce, funds, gas price: the node says which
                raise ChainError(f"the chain refused the transaction: {exc}") from None
        receipt = self.w3.eth.wait_for_transaction_receipt(tx_hash, timeout=RECEIPT_TIMEOUT_S)
        if receipt["status"] != 1:
            raise ChainError(f"transaction {tx_hash.hex()} failed on-chain")
        return receipt

    def contract(self, name: str, address: str) -> Contract:
        return self.w3.eth.contract(
            address=to_checksum_address(address), abi=artifacts.load(name).abi
        )

    def deploy(
        self,
        deployer: LocalAccount,
        holders: Sequence[str],
        amounts: Sequence[int],
        settings: GovernanceSettings = GovernanceSettings(),
        token_name: str = "Zion",  # noqa: S107 (a token's name, not a password)
        token_symbol: str = "ZION",  # noqa: S107
    ) -> Deployment:
        """Token with the initial distribution, timelock and governor, roles wired: the governor
        alone proposes and cancels, anyone executes, and the deployer keeps no admin role."""
        token = self._deploy(
            deployer,
            artifacts.TOKEN,
            token_name,
            token_symbol,
            [to_checksum_address(h) for h in holders],
            list(amounts),
        )
        timelock = self._deploy(
            deployer,
            artifacts.TIMELOCK,
            settings.timelock_delay_s,
            [],
            [_ZERO_ADDRESS],
            deployer.address,
        )
        governor = self._deploy(
            deployer,
            artifacts.GOVERNOR,
            token.address,
            timelock.address,
            settings.voting_delay_blocks,
            settings.voting_period_blocks,
            settings.proposal_threshold,
            settings.quorum_percent,
        )
        roles = timelock.functions
        for role in (roles.PROPOSER_ROLE().call(), roles.CANCELLER_ROLE().call()):
            self.transact(deployer, roles.grantRole(role, governor.address))
        admin = roles.DEFAULT_ADMIN_ROLE().call()
        receipt = self.transact(deployer, roles.renounceRole(admin, deployer.address))
        return Deployment(
            chain_id=self.chain_id,
            token=token.address,
            timelock=timelock.address,
            governor=governor.address,
            block=int(receipt["blockNumber"]),
        )

    def _deploy(self, deployer: LocalAccount, name: str, *args: object) -> Contract:
        artifact = artifacts.load(name)
        factory = self.w3.eth.contract(abi=artifact.abi, bytecode=artifact.bytecode)
        receipt = self.transact(deployer, factory.constructor(*args))
        address = receipt["contractAddress"]
        if address is None:
            raise ChainError(f"deploying {name} created no contract")
        return self.contract(name, address)


class Dao:
    """One deployment of the DAO: reads, ballots, proposals."""

    def __init__(self, chain: Chain, deployment: Deployment) -> None:
        self.chain = chain
        self.deployment = deployment
        self.token = chain.contract(artifacts.TOKEN, deployment.token)
        self.governor = chain.contract(artifacts.GOVERNOR, deployment.governor)
        self.timelock = chain.contract(artifacts.TIMELOCK, deployment.timelock)

    # --- reads ---

    def status(self, proposal_id: int) -> ProposalStatus:
        gov = self.governor.functions
        try:
            state = gov.state(proposal_id).call()
        except Exception as exc:
            raise _as_revert(exc) from None
        against, for_, abstain = gov.proposalVotes(proposal_id).call()
        return ProposalStatus(
            id=proposal_id,
            state=PROPOSAL_STATES[state],
            snapshot=gov.proposalSnapshot(proposal_id).call(),
            deadline=gov.proposalDeadline(proposal_id).call(),
            votes_against=against,
            votes_for=for_,
            votes_abstain=abstain,
        )

    def votes_at(self, voter: str, timepoint: int) -> int:
        return int(self.token.functions.getPastVotes(to_checksum_address(voter), timepoint).call())

    def balance(self, holder: str) -> int:
        """The DAO token held by ``holder``, in its smallest unit."""
        return int(self.token.functions.balanceOf(to_checksum_address(holder)).call())

    def nonce(self, voter: str) -> int:
        return int(self.governor.functions.nonces(to_checksum_address(voter)).call())

    # --- ballots (EIP-712) ---

    def ballot_typed_data(self, proposal_id: int, support: int, voter: str) -> dict[str, Any]:
        """What a wallet signs (eth_signTypedData_v4): the domain read from the governor itself,
        EIP712Domain listed in types, uint256 values as decimal strings."""
        if support not in (AGAINST, FOR, ABSTAIN):
            raise ValueError("support must be 0 (against), 1 (for) or 2 (abstain)")
        return {
            "types": records.BALLOT_TYPES,
            "primaryType": "Ballot",
            "domain": _eip712_domain(self.governor),
            "message": {
                "proposalId": str(proposal_id),
                "support": support,
                "voter": to_checksum_address(voter),
                "nonce": str(self.nonce(voter)),
            },
        }

    def cast_vote_by_sig(
        self, relayer: LocalAccount, proposal_id: int, support: int, voter: str, signature: bytes
    ) -> TxReceipt:
        call = self.governor.functions.castVoteBySig(
            proposal_id, support, to_checksum_address(voter), signature
        )
        return self.chain.transact(relayer, call)

    # --- actions ---

    def delegation_typed_data(self, delegator: str, delegatee: str, expiry: int) -> dict[str, Any]:
        """What a member signs to delegate without paying gas (ERC20Votes delegateBySig)."""
        nonce = self.token.functions.nonces(to_checksum_address(delegator)).call()
        return {
            "types": {
                "EIP712Domain": records.BALLOT_TYPES["EIP712Domain"],
                "Delegation": [
                    {"name": "delegatee", "type": "address"},
                    {"name": "nonce", "type": "uint256"},
                    {"name": "expiry", "type": "uint256"},
                ],
            },
            "primaryType": "Delegation",
            "domain": _eip712_domain(self.token),
            "message": {
                "delegatee": to_checksum_address(delegatee),
                "nonce": str(nonce),
                "expiry": str(expiry),
            },
        }

    def delegate_by_sig(
        self, relayer: LocalAccount, typed_data: dict[str, Any], signature: bytes
    ) -> TxReceipt:
        """Submit a signed delegation (any account pays the gas)."""
        if len(signature) != 65:
            raise ChainError("a delegation signature has 65 bytes")
        message = typed_data["message"]
        r, s_, v = signature[:32], signature[32:64], signature[64]
        call = self.token.functions.delegateBySig(
            to_checksum_address(message["delegatee"]),
            int(message["nonce"]),
            int(message["expiry"]),
            v if v >= 27 else v + 27,
            r,
            s_,
        )
        return self.chain.transact(relayer, call)

    def delegate(self, account: LocalAccount, to: str | None = None) -> TxReceipt:
        delegatee = to_checksum_address(to or account.address)
        return self.chain.transact(account, self.token.functions.delegate(delegatee))

    def propose(
        self,
        account: LocalAccount,
        targets: Sequence[str],
        values: Sequence[int],
        calldatas: Sequence[bytes],
        description: str,
    ) -> Proposal:
        proposal = Proposal(
            id=0,
            targets=tuple(to_checksum_address(t) for t in targets),
            values=tuple(values),
            calldatas=tuple(calldatas),
            description=description,
        )
        args = (list(proposal.targets), list(proposal.values), list(proposal.calldatas))
        receipt = self.chain.transact(account, self.governor.functions.propose(*args, description))
        created = self.governor.events.ProposalCreated().process_receipt(receipt)
        if not created:
            raise ChainError("propose sent, but no ProposalCreated event in its receipt")
        return Proposal(int(created[0]["args"]["proposalId"]), *args_tuple(proposal))

    def find_proposal(self, proposal_id: int) -> Proposal:
        """A proposal's actions and description, from its ProposalCreated event."""
        events = self.governor.events.ProposalCreated().get_logs(
            from_block=self.deployment.block, argument_filters={}
        )
        for event in events:
            args = event["args"]
            if int(args["proposalId"]) == proposal_id:
                return Proposal(
                    proposal_id,
                    tuple(to_checksum_address(t) for t in args["targets"]),
                    tuple(int(v) for v in args["values"]),
                    tuple(bytes(c) for c in args["calldatas"]),
                    str(args["description"]),
                )
        raise ContractRevert("GovernorNonexistentProposal", (proposal_id,))

    def queue(self, account: LocalAccount, proposal: Proposal) -> TxReceipt:
        return self.chain.transact(account, self.governor.functions.queue(*_action(proposal)))

    def execute(self, account: LocalAccount, proposal: Proposal) -> TxReceipt:
        return self.chain.transact(account, self.governor.functions.execute(*_action(proposal)))


def args_tuple(proposal: Proposal) -> tuple[Any, ...]:
    return proposal.targets, proposal.values, proposal.calldatas, proposal.description


def _eip712_domain(contract: Contract) -> dict[str, str]:
    """A contract's own EIP-712 domain (ERC-5267 eip712Domain()), as wallets take it."""
    _fields, name, version, chain_id, address, _salt, _ext = (
        contract.functions.eip712Domain().call()
    )
    return {
        "name": name,
        "version": version,
        "chainId": str(chain_id),
        "verifyingContract": address,
    }


def _action(proposal: Proposal) -> tuple[Any, ...]:
    return (
        list(proposal.targets),
        list(proposal.values),
        list(proposal.calldatas),
        proposal.description_hash,
    )


def sign_ballot(account: LocalAccount, typed_data: dict[str, Any]) -> bytes:
    """Sign a ballot as a browser wallet would (the node's own keystore votes this way)."""
    return bytes(account.sign_message(encode_typed_data(full_message=typed_data)).signature)


def ballot_signer(typed_data: dict[str, Any], signature: bytes) -> str:
    """The address whose key made ``signature`` over ``typed_data`` (checksummed)."""
    try:
        return str(
            Account.recover_message(encode_typed_data(full_message=typed_data), signature=signature)
        )
    except Exception as exc:
        raise ChainError(f"not a valid ballot signature: {exc}") from None


_sender_locks: dict[str, threading.Lock] = {}
_sender_locks_guard = threading.Lock()


def _sender_lock(address: str) -> threading.Lock:
    """One lock per sending account, shared by every Chain of this process. Unbounded, but
    holds only the accounts this process signs with: its own wallets."""
    with _sender_locks_guard:
        return _sender_locks.setdefault(address, threading.Lock())


def _as_revert(exc: Exception) -> ChainError:
    data = revert_data(exc)
    if data:
        return decode_revert(data)
    return ChainError(f"the chain refused the call: {exc}")


__all__ = [
    "ABSTAIN",
    "AGAINST",
    "FOR",
    "Chain",
    "ContractRevert",
    "Dao",
    "Deployment",
    "GovernanceSettings",
    "Proposal",
    "ProposalStatus",
    "ballot_signer",
    "sign_ballot",
]
