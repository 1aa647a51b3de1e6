"""Import profiles: the named settings that decide which CID a file gets.

The same bytes get different CIDs under different settings, so a profile is chosen by name and
never tweaked field by field. The values are those of Helia 8 / Kubo's `unixfs-v1-2025` and of
plain `ipfs add` (../shared/vectors/unixfs has the CIDs each gives).
"""

from dataclasses import dataclass
from typing import Final

from zion.protocols import limits

#: Room a dag-pb leaf needs around its chunk (protobuf keys and lengths).
_LEAF_OVERHEAD: Final = 32


@dataclass(frozen=True, slots=True)
class ImportProfile:
    name: str
    cid_version: int
    raw_leaves: bool
    chunk_size: int
    max_links: int
    #: How a directory's size is estimated against the HAMT threshold: "links" (name + CID
    #: bytes per link: boxo's default and Helia's `links-bytes`) or "block" (the encoded
    #: directory block, as IPIP-499 defines for unixfs-v1-2025).
    shard_estimate: str = "links"

    def __post_init__(self) -> None:
        if self.cid_version not in (0, 1):
            raise ValueError(f"profile {self.name}: CID version must be 0 or 1")
        if self.cid_version == 0 and self.raw_leaves:
            raise ValueError(f"profile {self.name}: CIDv0 cannot name raw leaves")
        if not 1 <= self.chunk_size <= limits.MAX_BLOCK_BYTES - _LEAF_OVERHEAD:
            raise ValueError(f"profile {self.name}: chunk size out of range")
        if not 2 <= self.max_links <= limits.MAX_DAG_PB_LINKS:
            raise ValueError(f"profile {self.name}: links per node out of range")
        if self.shard_estimate not in ("links", "block"):
            raise ValueError(f"profile {self.name}: shard_estimate must be links or block")


PROFILES: Final = {
    profile.name: profile
    for profile in (
        ImportProfile("unixfs-v1-2025", 1, True, 1024 * 1024, 1024, "block"),
        ImportProfile("kubo-legacy", 0, False, 256 * 1024, 174),
        ImportProfile("kubo-cidv1", 1, True, 256 * 1024, 174),
    )
}
DEFAULT_PROFILE: Final = PROFILES["unixfs-v1-2025"]
