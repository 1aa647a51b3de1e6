// SPDX-License-Identifier: MIT
pragma solidity 0.8.28;

import {ERC20} from "@openzeppelin/contracts/token/ERC20/ERC20.sol";
import {ERC20Permit} from "@openzeppelin/contracts/token/ERC20/extensions/ERC20Permit.sol";
import {ERC20Votes} from "@openzeppelin/contracts/token/ERC20/extensions/ERC20Votes.sol";
import {Nonces} from "@openzeppelin/contracts/utils/Nonces.sol";

/// @title Zion membership token: one token, one vote (once delegated).
/// @notice The whole supply is minted at deployment to the initial members; nobody can mint
/// more. Votes are checkpointed by block number, which is what the Governor counts.
contract ZionToken is ERC20, ERC20Permit, ERC20Votes {
    error ZionTokenLengthMismatch(uint256 holders, uint256 amounts);

    constructor(string memory name_, string memory symbol_, address[] memory holders, uint256[] memory amounts)
        ERC20(name_, symbol_)
        ERC20Permit(name_)
    {
        if (holders.length != amounts.length) {
            revert ZionTokenLengthMismatch(holders.length, amounts.length);
        }
        for (uint256 i = 0; i < holders.length; i++) {
            _mint(holders[i], amounts[i]);
        }
    }

    // The following overrides are required by Solidity (ERC20 and ERC20Votes both define them).

    function _update(address from, address to, uint256 value) internal override(ERC20, ERC20Votes) {
        super._update(from, to, value);
    }

    function nonces(address owner) public view override(ERC20Permit, Nonces) returns (uint256) {
        return super.nonces(owner);
    }
}
