// A js-libp2p node that listens to a Zion node's listings topic and checks what it receives
// with third-party code only: @ipld/dag-cbor, multiformats, @libp2p/peer-id and Node's Ed25519.
//
//   node --import ./polyfill.mjs js_listener.mjs <multiaddr of a Zion node, with /p2p/...>
//
// stdout: "ready" once the Zion peer is subscribed to the topic and in our mesh; then, for the
// first gossip message on the topic, one JSON line per record in it; then exit 0.
// Diagnostics go to stderr. Exit 1 on any error, 2 on bad usage.
import { createPublicKey, verify } from 'node:crypto'
import { noise } from '@chainsafe/libp2p-noise'
import * as dagCbor from '@ipld/dag-cbor'
import { gossipsub } from '@libp2p/gossipsub'
import { identify } from '@libp2p/identify'
import { peerIdFromString } from '@libp2p/peer-id'
import { ping } from '@libp2p/ping'
import { tcp } from '@libp2p/tcp'
import { yamux } from '@libp2p/yamux'
import { multiaddr } from '@multiformats/multiaddr'
import { createLibp2p } from 'libp2p'
import { CID } from 'multiformats/cid'
import { sha256 } from 'multiformats/hashes/sha2'

const TOPIC = '/zion/listings/1.0.0'
const SIGNATURE_DOMAIN = new TextEncoder().encode('zion-record-v1:')
const READY_TIMEOUT_MS = 30_000

const log = (...args) => console.error('[js_listener]', ...args)

if (process.argv.length !== 3) {
  console.error('usage: node --import ./polyfill.mjs js_listener.mjs <multiaddr>')
  process.exit(2)
}
const target = multiaddr(process.argv[2])
const targetPeer = target.getComponents().findLast((c) => c.name === 'p2p')?.value
if (targetPeer == null) {
  console.error('the multiaddr must end in /p2p/<peer ID>')
  process.exit(2)
}

function concat (...parts) {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0))
  let offset = 0
  for (const part of parts) {
    out.set(part, offset)
    offset += part.length
  }
  return out
}

function ed25519KeyOf (peerIdText) {
  const peerId = peerIdFromString(peerIdText)
  if (peerId.type !== 'Ed25519' || peerId.publicKey == null) {
    throw new Error(`author ${peerIdText} is not an Ed25519 peer ID`)
  }
  const raw = peerId.publicKey.raw
  return createPublicKey({
    key: { kty: 'OKP', crv: 'Ed25519', x: Buffer.from(raw).toString('base64url') },
    format: 'jwk'
  })
}

async function checkRecord (block, from) {
  const record = dagCbor.decode(block)
  const { sig, ...unsigned } = record
  const key = ed25519KeyOf(record.author)
  const payload = concat(SIGNATURE_DOMAIN, dagCbor.encode(unsigned))
  const verified = verify(null, payload, key, sig)
  // Self-check that verification can fail: the same record with one bit of sig flipped.
  const tampered = Uint8Array.from(sig)
  tampered[0] ^= 0x01
  const tamperDetected = verify(null, payload, key, tampered) === false
  const cid = CID.createV1(dagCbor.code, await sha256.digest(block))
  return {
    cid: cid.toString(),
    kind: record.kind,
    subject: record.subject,
    seq: record.seq,
    title: record.body?.title,
    price: record.body?.price,
    author: record.author,
    // The gossip message's publisher (its libp2p signature is checked by gossipsub, StrictSign).
    from: from.toString(),
    sig_bytes: sig.length,
    // DAG-CBOR is canonical: re-encoding what we decoded must give the same bytes back.
    canonical: Buffer.from(dagCbor.encode(record)).equals(Buffer.from(block)),
    verified,
    tamper_detected: tamperDetected
  }
}

const node = await createLibp2p({
  transports: [tcp()],
  connectionEncrypters: [noise()],
  streamMuxers: [yamux()],
  services: {
    identify: identify(),
    ping: ping(),
    pubsub: gossipsub({ emitSelf: false })
  }
})

let finished = false
async function finish (code) {
  if (finished) return
  finished = true
  // Do not let a slow shutdown hold the result back.
  setTimeout(() => process.exit(code), 2000).unref()
  try {
    await node.stop()
  } catch (err) {
    log('stop failed:', err)
  }
  process.exit(code)
}

const pubsub = node.services.pubsub
pubsub.addEventListener('message', (event) => {
  const msg = event.detail
  if (msg.topic !== TOPIC || finished) return
  void (async () => {
    try {
      const envelope = dagCbor.decode(msg.data)
      if (envelope?.v !== 1 || !Array.isArray(envelope.records)) {
        throw new Error(`not a Zion batch envelope: ${JSON.stringify(Object.keys(envelope ?? {}))}`)
      }
      for (const block of envelope.records) {
        console.log(JSON.stringify(await checkRecord(block, msg.from)))
      }
      await finish(0)
    } catch (err) {
      log('cannot check gossip message:', err)
      await finish(1)
    }
  })()
})

pubsub.subscribe(TOPIC)
log('peer', node.peerId.toString(), 'dialling', target.toString())
await node.dial(target)

const deadline = Date.now() + READY_TIMEOUT_MS
const inTopic = () =>
  pubsub.getSubscribers(TOPIC).some((p) => p.toString() === targetPeer) &&
  pubsub.getMeshPeers(TOPIC).includes(targetPeer)
await new Promise((resolve, reject) => {
  const check = () => {
    if (inTopic()) {
      resolve()
    } else if (Date.now() > deadline) {
      reject(new Error(`timed out: ${targetPeer} never joined our mesh for ${TOPIC}`))
    }
  }
  // Re-check on every topic event, and on the heartbeat (which grafts) as a backstop.
  for (const type of ['subscription-change', 'gossipsub:graft', 'gossipsub:heartbeat']) {
    pubsub.addEventListener(type, check)
  }
  check()
}).catch(async (err) => {
  log(err.message)
  await finish(1)
})
if (!finished) {
  console.log('ready')
}
