"""Where Zion nodes meet in the Kademlia DHT.

Every node announces itself as a provider of one rendezvous key and finds others by asking
for its providers: the scheme of go-libp2p's routing discovery, whose key for a namespace is
the CIDv1 (raw, sha2-256) of the namespace's bytes, with go-libp2p-pubsub's ``floodsub:``
namespace for a topic. Any libp2p implementation can therefore find Zion nodes with a plain
``findProviders`` on ``RENDEZVOUS_CID``. Every Zion node subscribes to every Zion topic, so
the listings topic stands for all of them.
"""

from typing import Final

from zion.protocols.cid import RAW, Cid
from zion.protocols.gossip import TOPIC_LISTINGS

RENDEZVOUS_NAMESPACE: Final = f"floodsub:{TOPIC_LISTINGS}"
_RENDEZVOUS: Final = Cid.for_block(RAW, RENDEZVOUS_NAMESPACE.encode())
#: The DHT key: the CID's sha2-256 multihash.
RENDEZVOUS_KEY: Final = _RENDEZVOUS.multihash
RENDEZVOUS_CID: Final = str(_RENDEZVOUS)
