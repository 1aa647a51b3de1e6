// A Helia node (helia 7: createHeliaLight + withLibp2pLight + withBitswap, or withHTTP for the
// trustless-gateway client) for the Zion content interop tests. Third-party code only.
//
//   node --import ./polyfill.mjs helia_peer.mjs serve FILE
//       add FILE with @helia/unixfs defaults; print {"addr": ..., "cid": ...}; serve over
//       Bitswap until stdin closes.
//   node --import ./polyfill.mjs helia_peer.mjs serve-dir N
//       add a directory "d" of N small files (entry-{i}.txt, "-é" before the dot when
//       i % 7 == 0, holding "{i}\n") with @helia/unixfs defaults (a HAMT when N is large);
//       print {"addr": ..., "cid": ...}; serve until stdin closes.
//   node --import ./polyfill.mjs helia_peer.mjs fetch ZION_MULTIADDR CID OUT
//       dial the Zion node, read CID with @helia/unixfs over Bitswap, write OUT; print
//       {"bytes": n}.
//   node --import ./polyfill.mjs helia_peer.mjs gateway GATEWAY_URL CID OUT
//       no libp2p: Helia's trustless-gateway client fetches raw blocks from GATEWAY_URL and
//       verifies each against its CID; write OUT; print {"bytes": n}.
//   node --import ./polyfill.mjs helia_peer.mjs import FILE
//       import FILE with @helia/unixfs defaults into Helia's in-memory blockstore, read in
//       1 MiB pieces; print {"cid": ..., "seconds": import time} (for bench/content.py).
//   node --import ./polyfill.mjs helia_peer.mjs car URL
//       GET URL (a CAR), read it with @ipld/car, hash every block and compare with its CID;
//       print {"roots": [...], "blocks": n, "bytes": total block bytes}.
//
// Diagnostics on stderr; exit 1 on any error, 2 on bad usage.
import { createReadStream, createWriteStream, readFileSync } from 'node:fs'
import { once } from 'node:events'
import { noise } from '@chainsafe/libp2p-noise'
import { withBitswap } from '@helia/bitswap'
import { fallbackRouter } from '@helia/fallback-router'
import { withHTTP } from '@helia/http'
import { withLibp2pLight } from '@helia/libp2p'
import { unixfs } from '@helia/unixfs'
import { identify } from '@libp2p/identify'
import { tcp } from '@libp2p/tcp'
import { yamux } from '@libp2p/yamux'
import { multiaddr } from '@multiformats/multiaddr'
import { CarReader } from '@ipld/car'
import { createHeliaLight } from 'helia'
import { equals } from 'uint8arrays/equals'
import { sha256 } from 'multiformats/hashes/sha2'
import { CID } from 'multiformats/cid'

const TIMEOUT_MS = 60_000
const log = (...args) => console.error('[helia_peer]', ...args)

function withLibp2pAndBitswap (helia, listen) {
  return withBitswap(withLibp2pLight(helia, {
    addresses: { listen },
    transports: [tcp()],
    connectionEncrypters: [noise()],
    streamMuxers: [yamux()],
    services: { identify: identify() }
  }))
}

async function save (fs, cid, out) {
  const file = createWriteStream(out)
  let bytes = 0
  for await (const chunk of fs.cat(cid, { signal: AbortSignal.timeout(TIMEOUT_MS) })) {
    bytes += chunk.length
    if (!file.write(chunk)) await once(file, 'drain')
  }
  file.end()
  await once(file, 'finish')
  return bytes
}

async function main ([mode, ...args]) {
  if (mode === 'serve' && args.length === 1) {
    const helia = withLibp2pAndBitswap(createHeliaLight(), ['/ip4/127.0.0.1/tcp/0'])
    await helia.start()
    const cid = await unixfs(helia).addBytes(readFileSync(args[0]))
    const addr = helia.libp2p.getMultiaddrs()[0].toString()
    console.log(JSON.stringify({ addr, cid: cid.toString() }))
    process.stdin.resume()
    await once(process.stdin, 'end')
    await helia.stop()
  } else if (mode === 'serve-dir' && args.length === 1) {
    const helia = withLibp2pAndBitswap(createHeliaLight(), ['/ip4/127.0.0.1/tcp/0'])
    await helia.start()
    const files = []
    for (let i = 0; i < Number(args[0]); i++) {
      const name = `entry-${i}${i % 7 === 0 ? '-é' : ''}.txt`
      files.push({ path: `d/${name}`, content: new TextEncoder().encode(`${i}\n`) })
    }
    let root
    for await (const entry of unixfs(helia).addAll(files)) root = entry
    const addr = helia.libp2p.getMultiaddrs()[0].toString()
    console.log(JSON.stringify({ addr, cid: root.cid.toString() }))
    process.stdin.resume()
    await once(process.stdin, 'end')
    await helia.stop()
  } else if (mode === 'fetch' && args.length === 3) {
    const helia = withLibp2pAndBitswap(createHeliaLight(), [])
    await helia.start()
    await helia.libp2p.dial(multiaddr(args[0]), { signal: AbortSignal.timeout(TIMEOUT_MS) })
    const bytes = await save(unixfs(helia), CID.parse(args[1]), args[2])
    console.log(JSON.stringify({ bytes }))
    await helia.stop()
  } else if (mode === 'gateway' && args.length === 3) {
    // The gateway is plain HTTP on 127.0.0.1, which Helia skips unless told otherwise. Helia
    // 7 consults "fallback" routers only after the others, and with no other router its
    // provider search never ends: so the gateway is offered by a plain router of our own.
    const gateway = fallbackRouter({ gateways: [args[0]] })
    const helia = withHTTP(createHeliaLight(), {
      delegatedRouters: [],
      recursiveGateways: [],
      allowInsecure: true,
      allowLocal: true
    })
    helia.addRouter({
      name: 'zion-gateway',
      findProviders: (cid, options) => gateway.findProviders(cid, options)
    })
    await helia.start()
    const bytes = await save(unixfs(helia), CID.parse(args[1]), args[2])
    console.log(JSON.stringify({ bytes }))
    await helia.stop()
  } else if (mode === 'import' && args.length === 1) {
    const helia = createHeliaLight()
    await helia.start()
    const started = performance.now()
    const stream = createReadStream(args[0], { highWaterMark: 1024 * 1024 })
    const cid = await unixfs(helia).addByteStream(stream)
    const seconds = (performance.now() - started) / 1000
    console.log(JSON.stringify({ cid: cid.toString(), seconds }))
    await helia.stop()
  } else if (mode === 'car' && args.length === 1) {
    const response = await fetch(args[0], { signal: AbortSignal.timeout(TIMEOUT_MS) })
    if (!response.ok) throw new Error(`GET ${args[0]}: ${response.status}`)
    const reader = await CarReader.fromBytes(new Uint8Array(await response.arrayBuffer()))
    let blocks = 0
    let bytes = 0
    for await (const { cid, bytes: block } of reader.blocks()) {
      const digest = await sha256.digest(block)
      if (!equals(digest.digest, cid.multihash.digest)) throw new Error(`block ${cid} does not match`)
      blocks++
      bytes += block.length
    }
    const roots = (await reader.getRoots()).map(String)
    console.log(JSON.stringify({ roots, blocks, bytes }))
  } else {
    console.error('usage: helia_peer.mjs serve FILE | serve-dir N | fetch MULTIADDR CID OUT | gateway URL CID OUT | import FILE | car URL')
    process.exit(2)
  }
}

main(process.argv.slice(2)).then(() => process.exit(0), (err) => {
  log(err)
  process.exit(1)
})
