"""Every hard limit of the wire formats, in one place.

Limits are checked before anything is stored or forwarded. Changing one changes what the
network accepts, so each is named, documented and covered by a test of its reject reason.
"""

from typing import Final

RECORD_FORMAT_VERSION: Final = 1

#: Largest encoded record (the whole signed DAG-CBOR block).
MAX_RECORD_BYTES: Final = 64 * 1024
#: A record may claim to be created at most this far in the future of the receiver's clock.
MAX_CLOCK_SKEW_MS: Final = 5 * 60 * 1000
#: The furthest a record's `expires` may lie after its `created`.
MAX_EXPIRY_MS: Final = 365 * 24 * 3600 * 1000
#: Records created before this (2020-01-01) are not believed.
MIN_CREATED_MS: Final = 1_577_836_800_000
#: `seq` is an unsigned 64-bit counter in every implementation that decodes it.
MAX_SEQ: Final = 2**63 - 1

MAX_SUBJECT_CHARS: Final = 64
MAX_TITLE_CHARS: Final = 140
MAX_DESCRIPTION_CHARS: Final = 8000
MAX_CATEGORY_CHARS: Final = 64
MAX_TAGS: Final = 16
MAX_TAG_CHARS: Final = 32
MAX_IMAGES: Final = 16
MAX_CID_CHARS: Final = 128
MAX_LOCATION_CHARS: Final = 128
#: Prices are integers in minor units (cents); 10^15 leaves room for any real price.
MAX_PRICE_AMOUNT: Final = 10**15
MAX_CHANNEL_CHARS: Final = 32
MAX_MESSAGE_TEXT_CHARS: Final = 4000
#: A direct message's text (it is padded and sealed; see protocols.dm).
MAX_DM_TEXT_CHARS: Final = 4000
MAX_DISPLAY_NAME_CHARS: Final = 64
MAX_TOMBSTONE_REASON_CHARS: Final = 200
MAX_PEER_ID_CHARS: Final = 128
MAX_MULTIADDR_CHARS: Final = 256

#: Bridge announcements (records of kind ``bridge``).
MAX_BRIDGE_OFFERS: Final = 8
MAX_BRIDGE_ADDRS: Final = 8
MAX_BRIDGE_TERMS_CHARS: Final = 1000
MAX_BRIDGE_CURRENCIES: Final = 32
MAX_BRIDGE_KEY_CHARS: Final = 256
MAX_BRIDGE_MODEL_CHARS: Final = 128
#: Payment bridges a seller names in their profile.
MAX_PAYMENT_BRIDGES: Final = 8
#: A bridge announcement lives at most this long unless renewed, so bridges that stop vanish.
MAX_BRIDGE_TTL_MS: Final = 7 * 24 * 3600 * 1000

#: Records per gossip message, and the message's size: py-libp2p costs ~10 ms of CPU per
#: gossip message per node, so many records travel together (go-libp2p-pubsub caps at 1 MiB).
MAX_BATCH_RECORDS: Final = 256
MAX_GOSSIP_MESSAGE_BYTES: Final = 1024 * 1024

#: Sync (/zion/sync/1.0.0) framing and work bounds.
MAX_SYNC_FRAME_BYTES: Final = 4 * 1024 * 1024
MAX_SYNC_RANGES_PER_FRAME: Final = 4096
MAX_SYNC_IDS_PER_FRAME: Final = 50_000
MAX_SYNC_GET_IDS: Final = 1000

#: Largest content block stored, served or accepted from a peer: the Bitswap limit that Kubo,
#: boxo and Helia share (2 MiB), twice the default chunk of the unixfs-v1-2025 profile.
MAX_BLOCK_BYTES: Final = 2 * 1024 * 1024
#: Links in one dag-pb node; a block of MAX_BLOCK_BYTES cannot hold many more anyway.
MAX_DAG_PB_LINKS: Final = 65_536
#: A CAR file's header (roots) is tiny; anything larger is not a CAR we want.
MAX_CAR_HEADER_BYTES: Final = 64 * 1024
MAX_CAR_ROOTS: Final = 64

#: Bitswap (/ipfs/bitswap/1.2.0): the message size Kubo and Helia accept and send.
MAX_BITSWAP_MESSAGE_BYTES: Final = 4 * 1024 * 1024
#: Wantlist entries one message may carry, and a peer may keep with us (Helia's cap).
MAX_BITSWAP_WANTS: Final = 1024
#: Blocks and presences in one message; more do not fit 4 MiB usefully.
MAX_BITSWAP_BLOCKS: Final = 1024
