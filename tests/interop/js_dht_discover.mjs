// A js-libp2p node that knows only a Zion seed and finds a Zion member through the DHT.
//
//   node --import ./polyfill.mjs js_dht_discover.mjs <multiaddr of a seed, with /p2p/...>
//
// It runs @libp2p/kad-dht as a client on /ipfs/kad/1.0.0 and dials nothing but the seed.
// Then: (a) findProviders on the rendezvous CID, computed here from go-libp2p's convention
// (CIDv1, raw, sha2-256 of "floodsub:" + topic), retried until a provider other than the seed
// appears; (b) findPeer of that provider over the network (no cache); (c) a dial of the
// provider at the addresses the DHT gave, and its identify protocols.
//
// stdout: one JSON line with the findings, once the member is connected; the process then
// stays up (so the member can be seen holding the connection) until stdin is closed, and
// exits 0. Diagnostics go to stderr. Exit 1 on any error, 2 on bad usage.
import { noise } from '@chainsafe/libp2p-noise'
import { identify } from '@libp2p/identify'
import { kadDHT, passthroughMapper } from '@libp2p/kad-dht'
import { peerIdFromString } from '@libp2p/peer-id'
import { ping } from '@libp2p/ping'
import { tcp } from '@libp2p/tcp'
import { yamux } from '@libp2p/yamux'
import { multiaddr } from '@multiformats/multiaddr'
import { createLibp2p } from 'libp2p'
import { CID } from 'multiformats/cid'
import * as raw from 'multiformats/codecs/raw'
import { sha256 } from 'multiformats/hashes/sha2'

const TOPIC = '/zion/listings/1.0.0'
const KAD_PROTOCOL = '/ipfs/kad/1.0.0'
const DISCOVER_TIMEOUT_MS = 20_000
const QUERY_TIMEOUT_MS = 5_000
const RETRY_MS = 300

const log = (...args) => console.error('[js_dht_discover]', ...args)
const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms))

if (process.argv.length !== 3) {
  console.error('usage: node --import ./polyfill.mjs js_dht_discover.mjs <seed multiaddr>')
  process.exit(2)
}
const seedAddr = multiaddr(process.argv[2])
const seedId = seedAddr.getComponents().findLast((c) => c.name === 'p2p')?.value
if (seedId == null) {
  console.error('the multiaddr must end in /p2p/<peer ID>')
  process.exit(2)
}

const started = performance.now()
const elapsed = () => Math.round(performance.now() - started)
const deadline = Date.now() + DISCOVER_TIMEOUT_MS

const rendezvous = CID.createV1(
  raw.code,
  await sha256.digest(new TextEncoder().encode(`floodsub:${TOPIC}`))
)

const node = await createLibp2p({
  // No listen address: a DHT client only dials out.
  transports: [tcp()],
  connectionEncrypters: [noise()],
  streamMuxers: [yamux()],
  services: {
    identify: identify(),
    ping: ping(),
    dht: kadDHT({
      protocol: KAD_PROTOCOL,
      clientMode: true,
      // Everything runs on 127.0.0.1: keep loopback addresses (the default drops them).
      peerInfoMapper: passthroughMapper
    })
  }
})
const dht = node.services.dht

let exiting = false
async function exit (code) {
  if (exiting) return
  exiting = true
  setTimeout(() => process.exit(code), 2000).unref()
  try {
    await node.stop()
  } catch (err) {
    log('stop failed:', err)
  }
  process.exit(code)
}

function remaining () {
  return Math.max(deadline - Date.now(), 1)
}

// (a) Providers of the rendezvous key, asked again until one besides the seed shows up
// (the member advertises within seconds of reaching the seed).
async function findMember () {
  let attempts = 0
  let lastError = null
  while (Date.now() < deadline) {
    attempts++
    const providers = new Map()
    const answeredBy = new Set()
    try {
      const signal = AbortSignal.timeout(Math.min(QUERY_TIMEOUT_MS, remaining()))
      for await (const event of dht.findProviders(rendezvous, { signal })) {
        if (event.name !== 'PROVIDER') continue
        answeredBy.add(event.from.toString())
        for (const peer of event.providers) {
          const id = peer.id.toString()
          const addrs = providers.get(id) ?? new Set()
          for (const addr of peer.multiaddrs) addrs.add(addr.toString())
          providers.set(id, addrs)
        }
      }
    } catch (err) {
      lastError = err
      log(`findProviders attempt ${attempts} failed:`, err.message)
    }
    const others = [...providers.keys()].filter((id) => id !== seedId)
    if (others.length > 0) {
      return {
        attempts,
        providers: Object.fromEntries([...providers].map(([id, addrs]) => [id, [...addrs]])),
        answered_by: [...answeredBy],
        member: others[0],
        memberAddrs: [...providers.get(others[0])]
      }
    }
    await sleep(RETRY_MS)
  }
  throw new Error(
    `no provider of ${rendezvous} besides the seed after ${attempts} lookups` +
      (lastError != null ? ` (last error: ${lastError.message})` : '')
  )
}

// (b) The member's addresses by FIND_NODE over the network (the peer store already has them
// from the provider record, so the cache is skipped).
async function findPeer (memberId) {
  const t0 = performance.now()
  const answeredBy = new Set()
  const queryErrors = []
  const onProgress = (event) => {
    if (event.type === 'kad-dht:query:final-peer') {
      answeredBy.add(event.detail.from.toString())
    } else if (event.type === 'kad-dht:query:query-error') {
      queryErrors.push(`${event.detail.from}: ${event.detail.error?.message}`)
    }
  }
  const outcome = (fields) => ({
    ...fields,
    answered_by: [...answeredBy],
    query_errors: queryErrors,
    ms: Math.round(performance.now() - t0)
  })
  try {
    const found = await node.peerRouting.findPeer(peerIdFromString(memberId), {
      useCache: false,
      onProgress,
      signal: AbortSignal.timeout(Math.min(QUERY_TIMEOUT_MS, remaining()))
    })
    return outcome({
      ok: found.id.toString() === memberId,
      addrs: found.multiaddrs.map((a) => a.toString())
    })
  } catch (err) {
    return outcome({ ok: false, error: `${err.name}: ${err.message}` })
  }
}

// (c) A connection to the member at an address the DHT gave, and what identify says it speaks.
// A DHT query may have connected us already (py-libp2p's seed names the member among the closer
// peers, and kad-dht then tries to query it): that connection is closed first, so that the
// dial below is a new one to the provider record's address.
async function dialMember (memberId, addrs) {
  const errors = []
  const memberPeer = peerIdFromString(memberId)
  const hungUp = node.getConnections(memberPeer).length > 0
  if (hungUp) {
    await node.hangUp(memberPeer)
  }
  // libp2p runs identify on every new connection (one identify stream per connection at a
  // time, so we wait for its result rather than asking again); listen before dialling.
  const identified = new Map()
  const waiting = new Map()
  node.addEventListener('peer:identify', (event) => {
    const { connection } = event.detail
    if (!connection.remotePeer.equals(memberPeer)) return
    identified.set(connection.id, event.detail)
    waiting.get(connection.id)?.(event.detail)
  })
  const identifyOf = (connection) => identified.get(connection.id) ?? new Promise((resolve, reject) => {
    waiting.set(connection.id, resolve)
    const signal = AbortSignal.timeout(Math.min(QUERY_TIMEOUT_MS, remaining()))
    signal.addEventListener('abort', () => reject(new Error('no identify from the member')))
  })
  for (const addr of addrs) {
    const target = multiaddr(addr.includes('/p2p/') ? addr : `${addr}/p2p/${memberId}`)
    try {
      const connection = await node.dial(target, {
        signal: AbortSignal.timeout(Math.min(QUERY_TIMEOUT_MS, remaining()))
      })
      const result = await identifyOf(connection)
      return {
        hung_up_first: hungUp,
        dialed: target.toString(),
        remote_addr: connection.remoteAddr.toString(),
        remote_peer: connection.remotePeer.toString(),
        agent: result.agentVersion,
        protocols: [...result.protocols].sort()
      }
    } catch (err) {
      errors.push(`${target}: ${err.message}`)
    }
  }
  throw new Error(`cannot dial the member: ${errors.join('; ')}`)
}

try {
  log('peer', node.peerId.toString(), 'dialling the seed', seedAddr.toString())
  await node.dial(seedAddr, { signal: AbortSignal.timeout(remaining()) })
  const seedConnectedMs = elapsed()

  const found = await findMember()
  const providersMs = elapsed()
  log(`found ${found.member} after ${found.attempts} lookups:`, found.memberAddrs)

  const peerResult = await findPeer(found.member)
  log('findPeer:', JSON.stringify(peerResult))

  const dialed = await dialMember(found.member, found.memberAddrs)
  const result = {
    js_peer_id: node.peerId.toString(),
    argv: process.argv.slice(2),
    rendezvous_cid: rendezvous.toString(),
    dht_mode: dht.getMode(),
    member: found.member,
    member_addrs: found.memberAddrs,
    providers: found.providers,
    providers_answered_by: found.answered_by,
    lookups: found.attempts,
    find_peer: peerResult,
    ...dialed,
    connected_peers: node.getPeers().map((p) => p.toString()).sort(),
    ms: { seed_connected: seedConnectedMs, providers_found: providersMs, member_identified: elapsed() }
  }
  console.log(JSON.stringify(result))
} catch (err) {
  log(err.stack ?? err)
  await exit(1)
}

// Hold the connections until the test closes our stdin.
process.stdin.resume()
process.stdin.on('end', () => void exit(0))
process.stdin.on('error', () => void exit(0))
