"""What the OpenAPI document says: every route described once, in the table ``operations()``,
keyed by (method, path) exactly as the route is declared, with the schemas it refers to.
gateway.openapi turns this into the document for the routes the app really has.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import KW_ONLY, dataclass, field, replace
from functools import cache
from typing import Any, Final, Literal

import msgspec

from zion.gateway.ipfs import (
    CAR_TYPE,
    DIRECTORY_PART_TYPE,
    MAX_LISTED_ENTRIES,
    MAX_LS_ENTRIES,
    MAX_UPLOAD_PARTS,
    RAW_TYPE,
)
from zion.gateway.problems import PROBLEM_TYPE
from zion.gateway.security import MAX_BODY_BYTES, SESSION_COOKIE_PREFIX
from zion.protocols import limits
from zion.protocols.records import SUPPORT_NAMES, BallotBody, ListingBody, MessageBody, ProfileBody

JSON = dict[str, Any]
#: Whether an operation needs the API token: content needs it only from a remote gateway.
Auth = Literal["required", "when-remote", "none"]

OPENAPI_VERSION: Final = "3.1.0"
TITLE: Final = "Zion node gateway"
DOCUMENT_PATH: Final = "/api/v1/openapi.json"
DOCS_PATH: Final = "/api/v1/docs"
#: The reference page, one of the web UI's files.
DOCS_PAGE_URL: Final = "/ui/api-docs.html"
#: A listing may live this many days at most (the record format's expiry limit).
MAX_LISTING_DAYS: Final = limits.MAX_EXPIRY_MS // (24 * 3600 * 1000)
_COMPONENT: Final = "#/components/schemas/{name}"

# The record bodies' own JSON Schemas: msgspec reads the constraints the node validates with,
# so the documented limits cannot drift from the enforced ones.
_WIRE: Final = msgspec.json.schema_components(
    [ListingBody, MessageBody, ProfileBody, BallotBody], ref_template=_COMPONENT
)[1]


# --- schemas -----------------------------------------------------------------------------


def _wire(body: str, name: str, description: str = "") -> JSON:
    return _described(_WIRE[body]["properties"][name], description)


def _ref(name: str) -> JSON:
    return {"$ref": _COMPONENT.format(name=name)}


def _object(required: Sequence[str] = (), **properties: JSON) -> JSON:
    return {"type": "object", "required": list(required), "properties": properties}


def _list_of(schema: JSON) -> JSON:
    """``{"items": [...]}``, as every list route answers."""
    return _object(["items"], items={"type": "array", "items": schema})


def _page_of(item: str) -> JSON:
    return {
        "allOf": [_ref("Page"), _object(items={"type": "array", "items": _ref(item)})],
        "description": f"a page of {item} items",
    }


def _string(description: str, **more: Any) -> JSON:
    return {"type": "string", "description": description, **more}


def _integer(description: str, **more: Any) -> JSON:
    return {"type": "integer", "description": description, **more}


def _boolean(description: str) -> JSON:
    return {"type": "boolean", "description": description}


def _array(items: JSON, description: str = "") -> JSON:
    return _described({"type": "array", "items": items}, description)


def _nullable(schema: JSON, description: str = "") -> JSON:
    return _described({"anyOf": [schema, {"type": "null"}]}, description)


def _described(schema: JSON, description: str) -> JSON:
    return {**schema, "description": description} if description else schema


_CID: Final = _string("a CID, v0 (Qm...) or v1", maxLength=limits.MAX_CID_CHARS)
_PEER_ID: Final = _string("a libp2p peer ID", examples=["12D3KooW..."])
_ADDRESS: Final = _wire("BallotBody", "voter", "an Ethereum address")
_MS: Final = _integer("milliseconds since the Unix epoch")
_HEX: Final = _string("0x-hex", pattern="^(0x)?[0-9a-fA-F]*$")
_UINT_TEXT: Final = _string("a uint256 as decimal text (JSON numbers lose precision)")
_VOTES: Final = _object(SUPPORT_NAMES, **{name: _string("votes") for name in SUPPORT_NAMES})
_SUPPORT: Final = {
    "description": "the vote: its name, or its number as the Governor counts it",
    "enum": [*SUPPORT_NAMES, *range(len(SUPPORT_NAMES)), *map(str, range(len(SUPPORT_NAMES)))],
}
_LISTING_FIELDS: Final = _WIRE["ListingBody"]["properties"]
_BALLOT_FIELDS: Final = _WIRE["BallotBody"]["properties"]

_BRIDGE_ERRORS: Final = {
    403: "the bridge serves only its allow list, or DAO token holders (reason: forbidden)",
    429: "the bridge's rate limit or this member's daily quota (rate-limited, quota-exhausted)",
    502: "the service behind the bridge failed (upstream-failed)",
    503: "no bridge for this service is known, or none is reachable (no-bridge, unreachable)",
    504: "the bridge did not answer in time (timeout)",
}
_ORDER_STATUS: Final = {
    "enum": ["awaiting-payment", "paid", "refunded"],
    "description": "awaiting-payment until the bridge's receipt arrives",
}
_LIMIT_RECOMMENDATIONS: Final = {"type": "integer", "minimum": 1, "maximum": 50, "default": 8}
_NDJSON: Final = "application/x-ndjson"

SCHEMAS: Final[JSON] = {
    "Order": _object(
        ["payment_intent", "listing_cid", "role", "status", "amount", "currency", "bridge"],
        payment_intent=_string("the Stripe PaymentIntent ID (pi_...)"),
        listing=_nullable(_string("the listing's ID"), "null if this node lacks that version"),
        listing_cid=_CID,
        title=_nullable(_string("the listing's title")),
        role={"enum": ["buyer", "seller", "bridge"], "description": "this member's part"},
        buyer=_PEER_ID,
        seller=_PEER_ID,
        amount=_integer("in the currency's smallest unit"),
        currency=_string("ISO 4217"),
        status=_ORDER_STATUS,
        client_secret=_string("the buyer's, while awaiting payment"),
        refunded=_integer("given back, in the smallest unit"),
        bridge=_described(_PEER_ID, "the bridge that took (or is taking) the payment"),
        receipt=_nullable(_string("the receipt record's ID"), "null while awaiting payment"),
        created=_MS,
    ),
    "Bridge": _object(
        ["peer_id", "name", "offers", "configured"],
        peer_id=_PEER_ID,
        name=_string("what the operator calls it"),
        offers=_array(
            _object(
                ["service", "access"],
                service={"enum": ["stripe", "ai"]},
                access={"enum": ["open", "allowlist", "token"]},
                terms=_string("the operator's terms"),
                quota_per_day=_integer("requests per member per UTC day"),
                currencies=_array(_string("ISO 4217"), "Stripe: currencies taken"),
                publishable_key=_string("Stripe: the publishable key for Stripe.js"),
                model=_string("AI: the chat model"),
                embedding_model=_string("AI: the embedding model"),
            )
        ),
        addrs=_array(_string("a multiaddr"), "where members dial it"),
        configured=_boolean("named in this node's [bridges] config"),
        expires=_nullable(_MS, "when its announcement lapses unless renewed"),
    ),
    "Recommendations": _object(
        ["items", "source"],
        items=_array({"$ref": "#/components/schemas/Listing"}),
        source={
            "enum": ["local", "embeddings"],
            "description": "ranked from this node's own index, or with a bridge's embeddings",
        },
    ),
    "Problem": {
        **_object(
            ["type", "status", "code", "detail"],
            type=_string("urn:zion:problem:<code>", examples=["urn:zion:problem:not-found"]),
            status=_integer("the HTTP status", minimum=400, maximum=599),
            code=_string("stable, for programs", examples=["invalid", "not-found", "too-large"]),
            detail=_string("what went wrong, for people"),
        ),
        "description": f"Every error is an RFC 9457 problem document ({PROBLEM_TYPE}).",
    },
    "Price": _WIRE["Price"],
    "Listing": _object(
        ["id", "cid", "author", "seq", "created", "expires", *_LISTING_FIELDS],
        id=_string("the listing's stable ID (its subject): the same across edits"),
        cid=_string("the record ID of this very version"),
        author=_PEER_ID,
        seq=_integer("the version: 1, then one more per edit"),
        created=_MS,
        expires=_nullable(_MS, "when it expires"),
        **_LISTING_FIELDS,
    ),
    "ListingInput": {
        **_WIRE["ListingBody"],
        "title": "ListingInput",
        "description": "A listing as its author writes it; it expires after expires_in_days"
        " (default 30) or at expires.",
        "properties": {
            **_LISTING_FIELDS,
            "images": _wire("ListingBody", "images", "CIDs of images already added"),
            "expires": _integer("expiry, ms since the epoch, within a year"),
            "expires_in_days": _integer("days until expiry", minimum=1, maximum=MAX_LISTING_DAYS),
        },
    },
    "Message": _object(
        ["id", "author", "channel", "text", "reply_to", "created"],
        id=_string("the message's record ID"),
        author=_PEER_ID,
        channel=_wire("MessageBody", "channel"),
        text=_wire("MessageBody", "text"),
        reply_to=_wire("MessageBody", "reply_to", "the record ID this answers"),
        created=_MS,
    ),
    "DirectMessage": _object(
        [
            "id",
            "conversation",
            "peer",
            "outgoing",
            "sent",
            "stored",
            "text",
            "listing",
            "status",
            "detail",
        ],
        id=_string("the message ID (hex)"),
        conversation=_string("the conversation ID (hex; the same on both members' nodes)"),
        peer=_PEER_ID,
        outgoing=_boolean("sent by this member"),
        sent=_integer("when the sender sent it (ms, by the sender's clock)"),
        stored=_MS,
        text=_string("the text", maxLength=limits.MAX_DM_TEXT_CHARS),
        listing=_nullable(_CID, "the listing it is about"),
        status=_string(
            "outgoing: sent, stored (by a mailbox), delivered, read or failed; incoming:"
            " unread or read",
            enum=["sent", "stored", "delivered", "read", "failed", "unread"],
        ),
        detail=_nullable(_string("text"), "why it failed, or why the last attempt did"),
    ),
    "Conversation": _object(
        ["id", "peer", "name", "last", "messages", "unread"],
        id=_string("the conversation ID (hex)"),
        peer=_PEER_ID,
        name=_nullable(_string("text"), "the member's profile name, if known"),
        last=_integer("when its newest message was sent (ms)"),
        messages=_integer("how many messages it has"),
        unread=_integer("incoming messages not read yet"),
    ),
    "Profile": _object(
        [
            "peer_id",
            "name",
            "avatar",
            "wallet",
            "wallet_sig",
            "enc_key",
            "payment_bridges",
            "seq",
            "created",
        ],
        peer_id=_PEER_ID,
        name=_wire("ProfileBody", "name"),
        avatar=_wire("ProfileBody", "avatar", "an image CID"),
        wallet=_wire("ProfileBody", "wallet", "a linked Ethereum wallet"),
        wallet_sig=_nullable(_HEX, "the wallet's EIP-191 link signature"),
        enc_key=_nullable(
            _string("hex", pattern="^[0-9a-f]{64}$"),
            "the X25519 key direct messages to this member are sealed to",
        ),
        payment_bridges=_array(
            _PEER_ID, "the Stripe bridges this member takes payments through ([bridges] stripe)"
        ),
        seq=_integer("the version"),
        created=_MS,
    ),
    "Ballot": _object(
        ["id", "author", *_BALLOT_FIELDS, "created"],
        id=_string("the ballot's record ID"),
        author=_string("the node that published it (a peer ID)"),
        **{**_BALLOT_FIELDS, "signature": {**_HEX, "description": "the EIP-712 signature"}},
        created=_MS,
    ),
    "Page": _object(
        ["items", "next"],
        items={"type": "array"},
        next=_nullable({"type": "string"}, "pass as ?cursor= for the next page; null at the end"),
    ),
    "Proposal": _object(
        ["id", "state", "snapshot", "deadline", "votes", "preview"],
        id=_UINT_TEXT,
        state=_string("the Governor's state: Pending, Active, Succeeded, Queued, Executed..."),
        snapshot=_integer("the timepoint whose voting power counts"),
        deadline=_integer("voting ends after this timepoint"),
        votes={**_VOTES, "description": "counted on-chain"},
        preview={**_VOTES, "description": "the gossiped ballots, weighted, before they are mined"},
    ),
}


# --- parameters, bodies, responses -------------------------------------------------------


def _param(where: str, name: str, description: str, schema: JSON | None, required: bool) -> JSON:
    return {
        "name": name,
        "in": where,
        "description": description,
        "required": required,
        "schema": schema or {"type": "string"},
    }


def _path(name: str, description: str, schema: JSON | None = None) -> JSON:
    return _param("path", name, description, schema, True)


def _query(name: str, description: str, schema: JSON | None = None, required: bool = False) -> JSON:
    return _param("query", name, description, schema, required)


def _header(name: str, description: str, schema: JSON | None = None) -> JSON:
    return _param("header", name, description, schema, False)


def _flag(name: str, description: str, default: bool) -> JSON:
    """True or false as ipfs._flag reads them."""
    schema = {"enum": ["true", "false", "1", "0", "yes", "no"], "default": str(default).lower()}
    return _query(name, description, schema)


def _json_body(schema: JSON) -> JSON:
    return {"required": True, "content": {"application/json": {"schema": schema}}}


def _json(schema: JSON, description: str) -> JSON:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


def _headers(**headers: str) -> JSON:
    """Response headers, named as Python keywords: ``X_Ipfs_Path`` is X-Ipfs-Path."""
    return {
        name.replace("_", "-"): {"description": text, "schema": {"type": "string"}}
        for name, text in headers.items()
    }


def _empty(description: str, **headers: str) -> JSON:
    return {"description": description, "headers": _headers(**headers)}


def _ndjson_stream(description: str) -> JSON:
    lines = _object(
        ["type"],
        type={
            "enum": ["source", "context", "chunk", "done", "error"],
            "description": "source (bridge, name) first; then chunk (text)...; done (model),"
            " or error (reason, message) if the bridge fails midway",
        },
    )
    return {"description": description, "content": {_NDJSON: {"schema": lines}}}


def problem_response(description: str) -> JSON:
    return {"description": description, "content": {PROBLEM_TYPE: {"schema": _ref("Problem")}}}


_LISTING_ID: Final = _path("listing_id", "the listing's stable ID")
_CHANNEL: Final = _path("name", "the channel", _wire("MessageBody", "channel"))
_CID_PARAM: Final = _path("cid", "the root CID", _CID)
_CONTENT_PATH: Final = _path("path", "a path inside the root (it may hold several segments)")
_PROPOSAL: Final = _path("proposal_id", "the proposal ID, a decimal uint256")
_CURSOR: Final = _query("cursor", "the `next` of the previous page")
_PIN: Final = _flag("pin", "pin what was imported", True)
_PRICE: Final = {"type": "integer", "minimum": 0, "maximum": limits.MAX_PRICE_AMOUNT}
_BAD_PROPOSAL: Final = "the proposal ID is not a decimal uint256"
_NO_CHAIN: Final = "no chain configured, or the chain does not answer"
_NO_WALLET: Final = "no chain, or this node has no unlocked wallet to send transactions"
_CONTENT_ERRORS: Final = {
    400: "a malformed CID or path, or a format other than raw or car",
    404: "the path does not exist under the root",
    422: "the content is not valid UnixFS",
    503: "the content cannot be fetched now (the blockstore is full, or Bitswap is busy)",
    504: "the content is neither here nor found on the network in time",
}


@dataclass(frozen=True)
class Op:
    """One route's documentation. ``errors``: the problem documents it answers with, and when;
    the security middleware's own (401, 403, 413) are added by ``_operation``."""

    tag: str
    summary: str
    responses: Mapping[int, JSON]
    _: KW_ONLY
    description: str = ""
    params: tuple[JSON, ...] = ()
    body: JSON | None = None
    errors: Mapping[int, str] = field(default_factory=dict)
    auth: Auth = "required"
    #: Where it is published, for a route whose ``{name:path}`` parameter spans segments: an
    #: OpenAPI path parameter cannot hold a "/".
    paths: tuple[str, ...] = ()


TAGS: Final = [
    {"name": "node", "description": "This node: identity, status, peers."},
    {"name": "listings", "description": "Marketplace listings: signed records, gossiped."},
    {"name": "channels", "description": "Public channels and their messages."},
    {"name": "profiles", "description": "Members' profiles, with an optional wallet link."},
    {"name": "events", "description": "What happens, live, as server-sent events."},
    {"name": "content", "description": "The IPFS path and trustless gateway (specs.ipfs.tech)."},
    {"name": "ipfs", "description": "The content API: add, import, list, pin, collect."},
    {"name": "dao", "description": "DAO governance through this node."},
    {"name": "messages", "description": "Direct messages, sealed end to end by this node."},
    {"name": "bridges", "description": "Payments and AI through bridges; recommendations."},
    {"name": "session", "description": "Trading the API token for a login cookie."},
    {"name": "reference", "description": "This document and its reference page."},
]

INFO_DESCRIPTION: Final = (
    "The HTTP gateway of a Zion node: REST API, live events, IPFS gateway and web UI, on"
    " 127.0.0.1 by default.\n\n"
    "Every /api/ request needs the node's API token: `Authorization: Bearer <token>`, or the"
    f" `{SESSION_COOKIE_PREFIX}<port>` cookie set by the login URL that `zion run` prints."
    " A gateway bound beyond loopback wants it on every request but the login."
    " A foreign Host is refused (421);"
    " so is a foreign Origin, or an API request from another site's page (403). Bodies are"
    f" limited to {MAX_BODY_BYTES} bytes, uploads to the node's upload limit. Every error is a"
    f" problem document ({PROBLEM_TYPE}): `code` for programs, `detail` for people."
)

SECURITY_REQUIREMENTS: Final[Mapping[Auth, list[JSON]]] = {
    "required": [{"bearer": []}, {"cookie": []}],
    # The empty requirement makes the token optional: only a remote gateway wants it.
    "when-remote": [{}, {"bearer": []}, {"cookie": []}],
    "none": [],
}


#: A listing as JSON, or as multipart with images (creating and replacing alike).
_LISTING_BODY: Final = {
    "required": True,
    "content": {
        "application/json": {"schema": _ref("ListingInput")},
        "multipart/form-data": {
            "schema": _object(
                ["listing"],
                listing=_string("a ListingInput, as JSON", contentMediaType="application/json"),
                image=_array({"contentMediaType": "image/*"}, "image files"),
            )
        },
    },
}

_CONVERSATION: Final = _path("conversation", "the conversation ID (32 hex digits)")
_DM_INPUT: Final = _object(
    ["to", "text"],
    to=_string("the recipient: a peer ID, or a profile name"),
    text=_string("the text", maxLength=limits.MAX_DM_TEXT_CHARS),
    listing=_described(_CID, "the listing it is about (optional)"),
)

#: Queue and execute fail alike.
_ACT_ERRORS: Final = {
    400: _BAD_PROPOSAL,
    404: "no such proposal on this DAO",
    422: "the chain refused it",
    503: _NO_WALLET,
}


@cache
def operations() -> Mapping[tuple[str, str], Op]:
    """The table: (method, route path as declared) -> its documentation.

    Built on first use, not at import: app.py imports this module, and the paging limits are
    app.py's. HEAD is listed only where it is more than the GET that Starlette adds it to.
    """
    from zion.gateway.app import DEFAULT_PAGE, MAX_PAGE, SSE_KEEPALIVE_S

    limit = _query(
        "limit",
        "items per page",
        {"type": "integer", "minimum": 1, "maximum": MAX_PAGE, "default": DEFAULT_PAGE},
    )
    content = Op(
        "content",
        "Content by CID and path",
        {
            200: {
                "description": "a file (typed by its name or its bytes), a directory's"
                " index.html or listing, or a block or CAR",
                "headers": _headers(
                    ETag="the CID, with .raw or .car, or DirIndex- for a listing",
                    Cache_Control="immutable: content never changes",
                    X_Ipfs_Path="the resolved /ipfs/ path",
                    Accept_Ranges="bytes (files)",
                    Content_Disposition="from ?filename= and ?download=",
                    Content_Security_Policy="sandbox: content never runs as this origin",
                ),
                "content": {"*/*": {}, RAW_TYPE: {}, CAR_TYPE: {}, "text/html": {}},
            },
            206: {
                "description": "the requested bytes of a file",
                "headers": _headers(Content_Range="bytes first-last/size"),
                "content": {"*/*": {}},
            },
            301: _empty("a directory, without the trailing slash", Location="the path with /"),
            304: _empty("If-None-Match holds the ETag"),
            416: _empty("the range starts past the end", Content_Range="bytes */size"),
        },
        description="The path gateway and trustless gateway of specs.ipfs.tech. `format=raw`"
        f" or `Accept: {RAW_TYPE}` answers the block itself; `format=car` or `Accept:"
        f" {CAR_TYPE}` a CAR v1 of the blocks along the path and below it (order=dfs, dups=n)."
        " Otherwise a file honours one byte `Range`; a directory without a trailing slash"
        " redirects to one, and a directory answers its index.html or a listing of its first"
        f" {MAX_LISTED_ENTRIES} entries.",
        params=(
            _CID_PARAM,
            _CONTENT_PATH,
            _query("format", "a block or a CAR instead of the content", {"enum": ["raw", "car"]}),
            _query("filename", "the name to save as; it also chooses the Content-Type"),
            _query("download", "save rather than show", {"enum": ["true"]}),
            _header("Range", "one range: `bytes=first-last` or `bytes=-suffix`"),
            _header("If-None-Match", "an ETag from before"),
        ),
        errors=_CONTENT_ERRORS,
        auth="when-remote",
        paths=("/ipfs/{cid}", "/ipfs/{cid}/{path}"),
    )
    return {
        # --- node ---
        ("GET", "/api/v1/node"): Op(
            "node",
            "This node's identity",
            {
                200: _json(
                    _object(
                        ["peer_id", "addrs", "version"],
                        peer_id=_PEER_ID,
                        addrs=_array({"type": "string"}, "multiaddrs it listens on"),
                        version=_string("the node's software version"),
                    ),
                    "peer ID, addresses, version",
                )
            },
        ),
        ("GET", "/api/v1/status"): Op(
            "node",
            "Counters: peers, records, sync, gossip, content",
            {200: _json({"type": "object"}, "counters by name")},
            description="Record counts, sync sessions, gossip verdicts, blockstore and Bitswap"
            " statistics. The set grows with the node: read the counters by name.",
        ),
        ("GET", "/api/v1/peers"): Op(
            "node",
            "Connected peers",
            {
                200: _json(
                    _list_of(
                        _object(
                            ["peer_id", "addrs", "connections"],
                            peer_id=_PEER_ID,
                            addrs=_array({"type": "string"}),
                            connections=_array({"type": "string"}),
                        )
                    ),
                    "the peers this node is connected to: the addresses it knows for each, and"
                    " the remote address of each open connection (a relayed one holds"
                    " /p2p-circuit)",
                )
            },
        ),
        ("POST", "/api/v1/peers"): Op(
            "node",
            "Connect to a peer",
            {200: _json(_object(["peer_id"], peer_id=_PEER_ID), "connected")},
            body=_json_body(_object(["multiaddr"], multiaddr=_string("ending in /p2p/<peer>"))),
            errors={422: "no multiaddr, or a malformed one", 503: "the dial failed or timed out"},
        ),
        # --- listings ---
        ("GET", "/api/v1/listings"): Op(
            "listings",
            "Find listings",
            {200: _json(_page_of("Listing"), "the matching listings")},
            description="Full-text search and filters. Prices compare within one currency.",
            params=(
                _query("q", "full-text search in titles, descriptions and tags"),
                _query("category", "only this category"),
                _query("author", "only this member's (a peer ID)"),
                _query("currency", "only prices in this currency; a price filter needs it"),
                _query("min_price", "lowest amount, in minor units (cents)", _PRICE),
                _query("max_price", "highest amount, in minor units (cents)", _PRICE),
                limit,
                _CURSOR,
            ),
            errors={422: "a bad limit, price filter, cursor or query"},
        ),
        ("POST", "/api/v1/listings"): Op(
            "listings",
            "Publish a listing",
            {201: _json(_ref("Listing"), "published and gossiped")},
            description="JSON, or multipart/form-data: a `listing` field holding the JSON and"
            f" up to {limits.MAX_IMAGES} image files (PNG, JPEG, GIF or WebP), which are added"
            " to IPFS and appended to the listing's images.",
            body=_LISTING_BODY,
            errors={422: "the listing breaks a rule (the detail says which), or a bad image"},
        ),
        ("GET", "/api/v1/categories"): Op(
            "listings",
            "Categories in use",
            {
                200: _json(
                    _list_of(
                        _object(
                            ["name", "listings"],
                            name=_string("the category"),
                            listings=_integer("how many listings it has"),
                        )
                    ),
                    "the most used categories",
                )
            },
        ),
        ("GET", "/api/v1/listings/{listing_id}"): Op(
            "listings",
            "One listing",
            {200: _json(_ref("Listing"), "its latest version (this node's own, if it has one)")},
            params=(_LISTING_ID,),
            errors={404: "no such listing (or it expired, or was deleted)"},
        ),
        ("PUT", "/api/v1/listings/{listing_id}"): Op(
            "listings",
            "Replace one of this node's listings",
            {200: _json(_ref("Listing"), "the new version")},
            description="Publishes the next version: the whole listing, not a patch (send"
            " `expires` back to keep it). JSON, or multipart as for publishing: new images are"
            " appended.",
            params=(_LISTING_ID,),
            body=_LISTING_BODY,
            errors={404: "this node has no listing with that ID", 422: "the listing breaks a rule"},
        ),
        ("DELETE", "/api/v1/listings/{listing_id}"): Op(
            "listings",
            "Delete one of this node's listings",
            {204: _empty("deleted: a tombstone is gossiped and the images are unpinned")},
            params=(_LISTING_ID,),
            errors={404: "this node has no listing with that ID"},
        ),
        # --- channels and profiles ---
        ("GET", "/api/v1/channels/{name}/messages"): Op(
            "channels",
            "A channel's messages",
            {200: _json(_page_of("Message"), "the channel's messages")},
            params=(_CHANNEL, limit, _CURSOR),
            errors={422: "a bad channel name, limit or cursor"},
        ),
        ("POST", "/api/v1/channels/{name}/messages"): Op(
            "channels",
            "Post a message",
            {201: _json(_ref("Message"), "published and gossiped")},
            params=(_CHANNEL,),
            body=_json_body(
                _object(
                    ["text"],
                    text=_wire("MessageBody", "text"),
                    reply_to=_wire("MessageBody", "reply_to", "the record ID this answers"),
                )
            ),
            errors={422: "no text, too long a text, or a bad channel name"},
        ),
        ("POST", "/api/v1/profile/dm-key"): Op(
            "profiles",
            "Rotate this node's direct-message key",
            {200: _json(_ref("Profile"), "the new version, carrying the new key")},
            description="Older keys are kept (up to 8), so mail sealed to them still opens.",
            errors={404: "this node has no profile yet (set one first)"},
        ),
        ("GET", "/api/v1/conversations"): Op(
            "messages",
            "Conversations",
            {200: _json(_object(["items"], items=_list_of(_ref("Conversation"))), "newest first")},
        ),
        ("POST", "/api/v1/conversations"): Op(
            "messages",
            "Send a direct message",
            {201: _json(_ref("DirectMessage"), "sealed and delivered, or sent and retried")},
            description="Sealed to the recipient's published key (their profile's `enc_key`)"
            " and delivered to their node; if it is not reachable, the message waits in the"
            " outbox and is retried (`status` says where it is).",
            body=_json_body(_DM_INPUT),
            errors={
                404: "no member by that name",
                422: "no text, too long, or the recipient has published no key",
            },
        ),
        ("GET", "/api/v1/conversations/{conversation}/messages"): Op(
            "messages",
            "A conversation's messages",
            {200: _json(_object(["items"], items=_list_of(_ref("DirectMessage"))), "oldest first")},
            params=(_CONVERSATION, _query("limit", "how many (newest)", _integer("1 to 200"))),
            errors={422: "a bad conversation ID or limit"},
        ),
        ("POST", "/api/v1/conversations/{conversation}/messages"): Op(
            "messages",
            "Reply in a conversation",
            {201: _json(_ref("DirectMessage"), "sealed and delivered, or sent and retried")},
            params=(_CONVERSATION,),
            body=_json_body(
                _object(
                    ["text"],
                    text=_DM_INPUT["properties"]["text"],
                    listing=_DM_INPUT["properties"]["listing"],
                )
            ),
            errors={404: "no such conversation", 422: "no text or too long"},
        ),
        ("POST", "/api/v1/conversations/{conversation}/read"): Op(
            "messages",
            "Mark a conversation read",
            {200: _json(_object(["read"], read=_integer("how many were unread")), "done")},
            params=(_CONVERSATION,),
            errors={422: "a bad conversation ID"},
        ),
        ("PUT", "/api/v1/profile"): Op(
            "profiles",
            "Set this node's profile",
            {200: _json(_ref("Profile"), "the new version")},
            description="A wallet link is the wallet's EIP-191 signature of"
            " `zion-wallet-link-v1:<peer ID>`.",
            body=_json_body(
                _object(
                    ["name"],
                    name=_wire("ProfileBody", "name"),
                    avatar=_wire("ProfileBody", "avatar", "an image CID"),
                    wallet=_wire("ProfileBody", "wallet", "an Ethereum address"),
                    wallet_sig=_nullable(_HEX, "the wallet's link signature"),
                )
            ),
            errors={422: "no name, or a field breaks a rule"},
        ),
        ("GET", "/api/v1/profiles/{peer_id}"): Op(
            "profiles",
            "A member's profile",
            {200: _json(_ref("Profile"), "its latest version")},
            params=(_path("peer_id", "the member", _PEER_ID),),
            errors={404: "no profile of this member here"},
        ),
        # --- events ---
        ("GET", "/api/v1/events"): Op(
            "events",
            "Live events (server-sent events)",
            {
                200: {
                    "description": "an endless event stream",
                    "headers": _headers(Cache_Control="no-store"),
                    "content": {
                        "text/event-stream": {
                            "schema": _string("`id: <n>`, `event: <type>`, `data: <JSON>`")
                        }
                    },
                }
            },
            description="From the node's durable event log: after Last-Event-ID (which"
            " browsers send when they reconnect) or `after`, else from now on. Types:"
            " `listing.stored`, `message.stored`, `profile.stored`, `ballot.stored` (data: the"
            " record); `listing.deleted`, `listing.expired` and the same for messages and"
            " profiles (data: id, author, subject); `dao.created`, `dao.vote`, `dao.queued`,"
            " `dao.executed`, `dao.canceled` from the chain. A comment line comes after"
            f" {SSE_KEEPALIVE_S:g} s without events, so that proxies keep the stream open.",
            params=(
                _header("Last-Event-ID", "resume after this event", {"pattern": "^[0-9]+$"}),
                _query("after", "resume after this event", {"pattern": "^[0-9]+$"}),
            ),
            errors={422: "Last-Event-ID (or after) is not an event number"},
        ),
        # --- the IPFS gateway ---
        ("GET", "/ipfs/{rest:path}"): content,
        ("HEAD", "/ipfs/{rest:path}"): replace(content, summary="Content headers only"),
        # --- the content API ---
        ("POST", "/api/v1/ipfs/add"): Op(
            "ipfs",
            "Add files",
            {
                201: _json(
                    _object(
                        ["cid", "size", "files"],
                        cid=_CID,
                        size=_integer("bytes of the root"),
                        files=_array(
                            _object(
                                ["path", "cid", "size"],
                                path={"type": "string"},
                                cid=_CID,
                                size={"type": "integer"},
                            )
                        ),
                    ),
                    "the root: the one file, or the directory of several",
                )
            },
            description="multipart/form-data, as Kubo's /api/v0/add: a file's filename is its"
            f" path (`dir/a.jpg`); a part of type {DIRECTORY_PART_TYPE} is an empty directory."
            f" At most {MAX_UPLOAD_PARTS} parts.",
            params=(
                _query("profile", "the import profile (CID version, chunks); default: the node's"),
                _PIN,
                _flag("wrap", "wrap even one file in a directory", False),
            ),
            body={
                "required": True,
                "content": {
                    "multipart/form-data": {
                        "schema": _object(file=_array({"contentMediaType": "*/*"}, "the files"))
                    }
                },
            },
            errors={422: "no files, an unknown profile, or a bad path"},
        ),
        ("POST", "/api/v1/ipfs/car"): Op(
            "ipfs",
            "Import a CAR",
            {201: _json(_object(["roots"], roots=_array(_CID)), "imported")},
            description="Every block is checked against its CID before it is stored.",
            params=(_PIN,),
            body={"required": True, "content": {CAR_TYPE: {}}},
            errors={422: "not a CAR v1, or a block does not match its CID"},
        ),
        ("GET", "/api/v1/ipfs/ls/{rest:path}"): Op(
            "ipfs",
            "List a directory",
            {
                200: _json(
                    _object(
                        ["cid", "kind", "size", "items", "truncated"],
                        cid=_CID,
                        kind={"enum": ["file", "directory", "block"]},
                        size={"type": "integer"},
                        items=_array(
                            _object(
                                ["name", "cid", "size"],
                                name={"type": "string"},
                                cid=_CID,
                                size={"type": ["integer", "null"]},
                            )
                        ),
                        truncated=_boolean(f"more than {MAX_LS_ENTRIES} entries: the rest left"),
                    ),
                    "what the path is, and a directory's entries",
                )
            },
            params=(_CID_PARAM, _CONTENT_PATH),
            errors=_CONTENT_ERRORS,
            paths=("/api/v1/ipfs/ls/{cid}", "/api/v1/ipfs/ls/{cid}/{path}"),
        ),
        ("GET", "/api/v1/ipfs/pins"): Op(
            "ipfs",
            "Pins",
            {
                200: _json(
                    _list_of(
                        _object(
                            ["cid", "owners"],
                            cid=_CID,
                            owners=_array(_string("user, or what pinned it (a listing)")),
                        )
                    ),
                    "every pinned root and who holds it",
                )
            },
        ),
        ("POST", "/api/v1/ipfs/pins/{cid}"): Op(
            "ipfs",
            "Pin",
            {200: _json(_object(["cid", "pinned"], cid=_CID, pinned={"const": True}), "pinned")},
            description="Fetches every block under the CID that is not here first.",
            params=(_path("cid", "the root to keep", _CID),),
            errors={status: _CONTENT_ERRORS[status] for status in (400, 422, 503, 504)},
        ),
        ("DELETE", "/api/v1/ipfs/pins/{cid}"): Op(
            "ipfs",
            "Unpin",
            {204: _empty("unpinned: the next collection may remove it")},
            params=(_path("cid", "the root", _CID),),
            errors={400: "not a CID", 404: "the user has not pinned it"},
        ),
        ("POST", "/api/v1/ipfs/gc"): Op(
            "ipfs",
            "Collect garbage",
            {
                200: _json(
                    _object(
                        ["blocks_removed", "bytes_freed", "blocks_kept"],
                        blocks_removed={"type": "integer"},
                        bytes_freed={"type": "integer"},
                        blocks_kept={"type": "integer"},
                    ),
                    "what was removed",
                )
            },
            description="Removes every block that no pin reaches.",
        ),
        ("GET", "/api/v1/ipfs/stat"): Op(
            "ipfs",
            "Blockstore size",
            {
                200: _json(
                    _object(
                        ["blocks", "bytes", "pins", "profile"],
                        blocks=_integer("blocks stored"),
                        bytes=_integer("bytes stored"),
                        pins=_integer("pinned roots"),
                        profile=_string("the import profile of new content"),
                    ),
                    "what the blockstore holds",
                )
            },
        ),
        # --- the DAO ---
        ("GET", "/api/v1/dao"): Op(
            "dao",
            "The DAO's chain and contracts",
            {
                200: _json(
                    _object(
                        ["chain_id", "token", "governor", "timelock", "relayer"],
                        chain_id={"type": "integer"},
                        token=_ADDRESS,
                        governor=_ADDRESS,
                        timelock=_ADDRESS,
                        relayer=_boolean("whether this node brings gossiped ballots on-chain"),
                    ),
                    "where the DAO lives",
                )
            },
            errors={503: _NO_CHAIN},
        ),
        ("GET", "/api/v1/dao/proposals"): Op(
            "dao",
            "Proposals",
            {
                200: _json(
                    _list_of(
                        _object(
                            ["id", "proposer", "description", "snapshot", "deadline"],
                            id=_UINT_TEXT,
                            proposer=_ADDRESS,
                            description={"type": "string"},
                            snapshot={"type": "integer"},
                            deadline={"type": "integer"},
                            last_event=_string("created, queued, executed or canceled"),
                            block=_integer("the block it was proposed in"),
                            votes={**_VOTES, "description": "votes cast on-chain"},
                        )
                    ),
                    "what the chain watcher has seen in confirmed blocks, newest first",
                )
            },
            errors={503: _NO_CHAIN},
        ),
        ("POST", "/api/v1/dao/proposals"): Op(
            "dao",
            "Propose, from this node's wallet",
            {201: _json(_object(["id", "description"], id=_UINT_TEXT), "proposed")},
            body=_json_body(
                _object(
                    ["description", "actions"],
                    description={"type": "string"},
                    actions={
                        **_array(
                            _object(
                                ["target"],
                                target={**_ADDRESS, "description": "the contract to call"},
                                value=_string("wei to send, decimal text", default="0"),
                                calldata={**_HEX, "default": "0x"},
                            )
                        ),
                        "minItems": 1,
                    },
                )
            ),
            errors={422: "a bad action, or the chain refused it", 503: _NO_WALLET},
        ),
        ("GET", "/api/v1/dao/proposals/{proposal_id}"): Op(
            "dao",
            "One proposal, live from the chain",
            {200: _json(_ref("Proposal"), "its state, votes and preview tally")},
            params=(_PROPOSAL,),
            errors={400: _BAD_PROPOSAL, 404: "no such proposal on this DAO", 503: _NO_CHAIN},
        ),
        ("POST", "/api/v1/dao/proposals/{proposal_id}/queue"): Op(
            "dao",
            "Queue a succeeded proposal, from this node's wallet",
            {200: _json(_ref("Proposal"), "queued")},
            params=(_PROPOSAL,),
            errors=_ACT_ERRORS,
        ),
        ("POST", "/api/v1/dao/proposals/{proposal_id}/execute"): Op(
            "dao",
            "Execute a queued proposal, from this node's wallet",
            {200: _json(_ref("Proposal"), "executed")},
            params=(_PROPOSAL,),
            errors=_ACT_ERRORS,
        ),
        ("GET", "/api/v1/dao/proposals/{proposal_id}/ballot"): Op(
            "dao",
            "The ballot a wallet signs",
            {
                200: _json(
                    _object(
                        ["types", "primaryType", "domain", "message"],
                        types={"type": "object"},
                        primaryType={"const": "Ballot"},
                        domain={"type": "object"},
                        message={"type": "object"},
                    ),
                    "EIP-712 typed data for eth_signTypedData_v4 (uint256 as decimal text)",
                )
            },
            params=(
                _PROPOSAL,
                _query("voter", "the voter's address", _ADDRESS, required=True),
                _query("support", "the vote", _SUPPORT, required=True),
            ),
            errors={400: _BAD_PROPOSAL, 422: "a bad voter or vote", 503: _NO_CHAIN},
        ),
        ("POST", "/api/v1/dao/proposals/{proposal_id}/ballots"): Op(
            "dao",
            "Submit a ballot a wallet signed",
            {201: _json(_ref("Ballot"), "checked against the chain, published and gossiped")},
            description="The node checks that the proposal is active, the signature is the"
            " voter's, and the voter had votes at the snapshot; a relaying node brings the"
            " ballot on-chain.",
            params=(_PROPOSAL,),
            body=_json_body(
                _object(
                    ["voter", "support", "signature"],
                    voter=_ADDRESS,
                    support=_SUPPORT,
                    signature={**_HEX, "description": "the EIP-712 signature of the ballot"},
                )
            ),
            errors={
                400: _BAD_PROPOSAL,
                422: "a bad signature, or a vote the chain would not count",
                503: _NO_CHAIN,
            },
        ),
        ("POST", "/api/v1/dao/proposals/{proposal_id}/vote"): Op(
            "dao",
            "Vote with this node's wallet",
            {201: _json(_ref("Ballot"), "signed, published and gossiped")},
            description="The ballot is signed by the node's own unlocked wallet.",
            params=(_PROPOSAL,),
            body=_json_body(_object(["support"], support=_SUPPORT)),
            errors={
                400: _BAD_PROPOSAL,
                422: "a bad vote, or one the chain would not count",
                503: _NO_WALLET,
            },
        ),
        # --- bridges: payments, AI, recommendations ---
        ("GET", "/api/v1/bridges"): Op(
            "bridges",
            "Bridges this node knows and runs",
            {
                200: _json(
                    _object(
                        ["items", "running"],
                        items=_array(_ref("Bridge"), "configured first, then announced"),
                        running=_array({"type": "object"}, "this node's own bridges, with counts"),
                    ),
                    "the bridges",
                )
            },
        ),
        ("GET", "/api/v1/payments"): Op(
            "bridges",
            "This member's orders",
            {200: _json(_list_of(_ref("Order")), "payments made or received, newest first")},
        ),
        ("POST", "/api/v1/payments"): Op(
            "bridges",
            "Start paying for a listing",
            {
                201: _json(
                    {
                        "allOf": [
                            _ref("Order"),
                            _object(
                                ["client_secret"],
                                client_secret=_string("confirm the payment with it (Stripe.js)"),
                                publishable_key=_string("the bridge's Stripe publishable key"),
                                stripe_status=_string("the PaymentIntent's status at Stripe"),
                            ),
                        ]
                    },
                    "the PaymentIntent, created by a Stripe bridge for the listing's price",
                )
            },
            description="A Stripe bridge checks the listing (signature, price, currency, not"
            " expired or deleted) and creates the PaymentIntent. Once Stripe tells the bridge"
            " the payment succeeded, it gossips a receipt and the order shows `paid`.",
            body=_json_body(_object(["listing"], listing=_string("the listing's ID or CID"))),
            errors={
                404: "no such listing here",
                422: "the bridge refused the listing: own-listing, price-mismatch, expired,"
                " deleted, bad-signature, unknown-listing, unsupported-currency",
                **_BRIDGE_ERRORS,
            },
        ),
        ("GET", "/api/v1/payments/{payment_intent}"): Op(
            "bridges",
            "One order",
            {200: _json(_ref("Order"), "the order")},
            params=(_path("payment_intent", "the PaymentIntent ID"),),
            errors={404: "no such order"},
        ),
        ("POST", "/api/v1/payments/{payment_intent}/refund"): Op(
            "bridges",
            "Refund a payment (the bridge's operator)",
            {200: _json(_ref("Order"), "refunded; the new receipt is gossiped")},
            params=(_path("payment_intent", "the PaymentIntent ID"),),
            body={
                "required": False,
                "content": {
                    "application/json": {
                        "schema": _object(amount=_integer("smallest unit; default: all"))
                    }
                },
            },
            errors={
                404: "not a paid order of this bridge",
                409: "this node runs no Stripe bridge, or Stripe refused",
                422: "a bad amount, or refunded already",
            },
        ),
        ("POST", "/bridge/stripe/webhook"): Op(
            "bridges",
            "Stripe's webhooks (a node running a Stripe bridge)",
            {200: _json(_object(["event", "action"]), "handled: receipt, refund or ignored")},
            description="Needs no token: each request must carry a valid `Stripe-Signature`"
            " within the tolerance window, and each event is acted on once.",
            errors={
                400: "no or a bad signature, too old, or not a Stripe event",
                403: "a foreign Origin (Stripe sends none)",
                404: "this node runs no Stripe bridge",
                409: "a replay of a delivery already handled",
            },
            auth="none",
        ),
        ("POST", "/api/v1/ai/draft"): Op(
            "bridges",
            "Draft a listing's text from notes",
            {200: _ndjson_stream("the draft as the model writes it")},
            body=_json_body(
                _object(
                    ["notes"],
                    notes=_string("what the member knows about the item"),
                    title=_string("a title to improve"),
                    category=_string("the listing's category"),
                )
            ),
            errors={422: "no notes, or too long", **_BRIDGE_ERRORS},
        ),
        ("POST", "/api/v1/ai/ask"): Op(
            "bridges",
            "Ask about the listings this node has",
            {200: _ndjson_stream("the answer; a `context` line names the listings it was given")},
            body=_json_body(_object(["question"], question=_string("the question"))),
            errors={422: "no question, or too long", **_BRIDGE_ERRORS},
        ),
        ("POST", "/api/v1/ai/embeddings"): Op(
            "bridges",
            "Embeddings of texts",
            {
                200: _json(
                    _object(
                        ["model", "dimensions", "vectors", "bridge"],
                        model=_string("the embedding model"),
                        dimensions=_integer("the length of each vector"),
                        vectors=_array(_array({"type": "number"})),
                        bridge=_PEER_ID,
                        name=_string("the bridge's name"),
                    ),
                    "one vector per text, in order",
                )
            },
            body=_json_body(_object(["texts"], texts=_array(_string("a text")))),
            errors={422: "no texts, too many or too long", **_BRIDGE_ERRORS},
        ),
        ("GET", "/api/v1/listings/{listing_id}/similar"): Op(
            "bridges",
            "Listings like this one",
            {200: _json(_ref("Recommendations"), "best first")},
            description="Works without any bridge, from this node's index; an AI bridge's"
            " embeddings improve it (`source` says which ranked them).",
            params=(_LISTING_ID, _query("limit", "how many", _LIMIT_RECOMMENDATIONS)),
            errors={404: "no such listing", 422: "a bad limit"},
        ),
        ("GET", "/api/v1/recommendations"): Op(
            "bridges",
            "Listings for this member",
            {200: _json(_ref("Recommendations"), "best first")},
            description="From what this member sells and asks about; no bridge needed.",
            params=(_query("limit", "how many", _LIMIT_RECOMMENDATIONS),),
            errors={422: "a bad limit"},
        ),
        # --- session and reference ---
        ("GET", "/login"): Op(
            "session",
            "Log in with the API token",
            {
                303: _empty(
                    "to the web UI, logged in",
                    Location="/",
                    Set_Cookie=f"{SESSION_COOKIE_PREFIX}<port>=<session>; Max-Age=..; HttpOnly;"
                    " SameSite=Strict; Path=/",
                )
            },
            description="The URL that `zion run` prints: trades the token for a session cookie"
            " (signed with the token, valid for 30 days; not the token itself).",
            params=(_query("token", "the node's API token", required=True),),
            errors={401: "a wrong or missing token"},
            auth="none",
        ),
        ("GET", DOCUMENT_PATH): Op(
            "reference", "This OpenAPI document", {200: _json({"type": "object"}, "OpenAPI 3.1")}
        ),
        ("GET", DOCS_PATH): Op(
            "reference",
            "The API reference page",
            {307: _empty("to the page, " + DOCS_PAGE_URL, Location=DOCS_PAGE_URL)},
            description="Renders this document in the browser (logged in by the cookie).",
        ),
    }
