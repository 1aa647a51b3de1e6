// Signs EIP-712 typed data exactly as MetaMask's eth_signTypedData_v4 does
// (@metamask/eth-sig-util signTypedData, version V4). Third-party code only.
//   stdin: {"privateKey": "0x...", "typedData": {...}}   stdout: the 0x signature
import { readFileSync } from 'node:fs'
import { SignTypedDataVersion, signTypedData } from '@metamask/eth-sig-util'

const { privateKey, typedData } = JSON.parse(readFileSync(0, 'utf8'))
const key = Buffer.from(privateKey.replace(/^0x/, ''), 'hex')
console.log(signTypedData({ privateKey: key, data: typedData, version: SignTypedDataVersion.V4 }))
