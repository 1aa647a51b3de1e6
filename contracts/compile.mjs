// Compiles src/*.sol (and OpenZeppelin's TimelockController) with the pinned solcjs and writes
// artifacts/<Contract>.json: ABI, creation bytecode, runtime bytecode, and the exact compiler
// input settings. Deterministic: the same sources and compiler give the same bytes, which
// tests/contracts/test_artifacts.py checks. Run: npm ci && node compile.mjs [--check]
import { readFileSync, readdirSync, writeFileSync } from 'node:fs'
import { createRequire } from 'node:module'
import path from 'node:path'

const require = createRequire(import.meta.url)
const solc = require('solc')
const here = path.dirname(new URL(import.meta.url).pathname)
const CONTRACTS = {
  'src/ZionToken.sol': ['ZionToken'],
  'src/ZionGovernor.sol': ['ZionGovernor'],
  '@openzeppelin/contracts/governance/TimelockController.sol': ['TimelockController']
}
const settings = {
  optimizer: { enabled: true, runs: 200 },
  evmVersion: 'cancun',
  outputSelection: { '*': { '*': ['abi', 'evm.bytecode.object', 'evm.deployedBytecode.object'] } }
}

const sources = {}
for (const name of readdirSync(path.join(here, 'src')).sort()) {
  sources[`src/${name}`] = { content: readFileSync(path.join(here, 'src', name), 'utf8') }
}
sources['@openzeppelin/contracts/governance/TimelockController.sol'] = {
  content: readFileSync(require.resolve('@openzeppelin/contracts/governance/TimelockController.sol'), 'utf8')
}

function findImports (importPath) {
  try {
    return { contents: readFileSync(require.resolve(importPath), 'utf8') }
  } catch {
    return { error: `not found: ${importPath}` }
  }
}

const input = { language: 'Solidity', sources, settings }
const output = JSON.parse(solc.compile(JSON.stringify(input), { import: findImports }))
const errors = (output.errors ?? []).filter((e) => e.severity === 'error')
for (const e of output.errors ?? []) console.error(e.formattedMessage)
if (errors.length) process.exit(1)

const check = process.argv.includes('--check')
let stale = 0
for (const [file, names] of Object.entries(CONTRACTS)) {
  for (const name of names) {
    const contract = output.contracts[file][name]
    const artifact = {
      contractName: name,
      source: file,
      compiler: { version: solc.version(), settings: { optimizer: settings.optimizer, evmVersion: settings.evmVersion } },
      abi: contract.abi,
      bytecode: '0x' + contract.evm.bytecode.object,
      deployedBytecode: '0x' + contract.evm.deployedBytecode.object
    }
    const target = path.join(here, 'artifacts', `${name}.json`)
    const text = JSON.stringify(artifact, null, 1) + '\n'
    if (check) {
      let committed = ''
      try { committed = readFileSync(target, 'utf8') } catch {}
      if (committed !== text) { console.error(`${name}: differs from ${target}`); stale++ }
    } else {
      writeFileSync(target, text)
      console.log(`wrote ${path.relative(here, target)} (${contract.evm.bytecode.object.length / 2} bytes)`)
    }
  }
}
if (check) {
  console.log(stale ? `${stale} artifact(s) differ` : 'artifacts match the sources')
  process.exit(stale ? 1 : 0)
}
