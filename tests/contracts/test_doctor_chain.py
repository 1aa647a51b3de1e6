"""`zion doctor` against a real chain (anvil): the RPC answers, its clock is the machine's, and
a contract address with no contract is named."""

from __future__ import annotations

from zion.node import config as config_module
from zion.node import doctor


def test_the_chain_answers_and_missing_contracts_are_named(anvil_url: str) -> None:
    empty = "0x" + "12" * 20
    settings = config_module.load(None, {"chain": {"rpc_url": anvil_url, "token": empty}})
    findings = doctor.check_chain_and_clock(settings)
    by_check = {finding.check: finding for finding in findings if finding.status != "fail"}
    assert by_check["chain"].status == "ok" and "chain ID 31337" in by_check["chain"].detail
    assert by_check["clock"].status == "ok"
    (missing,) = [finding for finding in findings if finding.status == "fail"]
    assert empty in missing.detail and "zion dao deploy" in missing.fix


def test_a_chain_that_does_not_answer_fails() -> None:
    settings = config_module.load(None, {"chain": {"rpc_url": "http://127.0.0.1:9"}})
    (finding,) = doctor.check_chain_and_clock(settings)
    assert finding.status == "fail" and "rpc_url" in finding.fix
