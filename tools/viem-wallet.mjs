// A wallet written with viem (pinned in package.json) against a Tidepool node: sends types 0, 1,
// 2 and 4 signed by viem, waits for each receipt, reads each transaction back with
// getTransaction and checks every field it sent, and that viem re-serializes what it read to
// the same hash. Exit code 0 on success; the first mismatch is printed and exits 1.
//
// Usage: node tools/viem-wallet.mjs <rpc-url> <chain-id> <private-key> x4
import {
  createPublicClient,
  createWalletClient,
  defineChain,
  http,
  keccak256,
  serializeTransaction,
} from 'viem';
import { privateKeyToAccount } from 'viem/accounts';

const [url, chainIdText, ...keys] = process.argv.slice(2);
if (!url || keys.length < 4) {
  console.error('usage: viem-wallet.mjs <rpc-url> <chain-id> <key0> <key1> <key2> <key3>');
  process.exit(2);
}
const chain = defineChain({
  id: Number(chainIdText),
  name: 'tidepool-dev',
  nativeCurrency: { name: 'Ether', symbol: 'ETH', decimals: 18 },
  rpcUrls: { default: { http: [url] } },
});
const publicClient = createPublicClient({ chain, transport: http(url) });

function expectEqual(what, got, want) {
  const norm = (v) => (typeof v === 'string' ? v.toLowerCase() : JSON.stringify(v, (_, x) => (typeof x === 'bigint' ? x.toString() : x)));
  if (norm(got) !== norm(want)) {
    console.error(`${what}: got ${norm(got)}, sent ${norm(want)}`);
    process.exit(1);
  }
}

const recipient = privateKeyToAccount(keys[3]).address;
const delegate = '0x00000000000000000000000000000000000000de';
const slot = '0x0000000000000000000000000000000000000000000000000000000000000001';
const fees = await publicClient.estimateFeesPerGas();
const gasPrice = await publicClient.getGasPrice();

const cases = [
  { name: 'legacy', key: keys[0], fields: { type: 'legacy', gasPrice } },
  {
    name: 'eip2930',
    key: keys[1],
    fields: { type: 'eip2930', gasPrice, accessList: [{ address: delegate, storageKeys: [slot] }] },
  },
  {
    name: 'eip1559',
    key: keys[2],
    fields: { type: 'eip1559', maxFeePerGas: fees.maxFeePerGas, maxPriorityFeePerGas: fees.maxPriorityFeePerGas },
  },
  { name: 'eip7702', key: keys[3], fields: { type: 'eip7702' } },
];

for (const { name, key, fields } of cases) {
  const account = privateKeyToAccount(key);
  const wallet = createWalletClient({ account, chain, transport: http(url) });
  const request = { to: recipient, value: 1234n, data: '0x0102', ...fields };
  if (fields.type === 'eip7702') {
    const authorization = await wallet.signAuthorization({ contractAddress: delegate, executor: 'self' });
    request.authorizationList = [authorization];
    request.maxFeePerGas = fees.maxFeePerGas;
    request.maxPriorityFeePerGas = fees.maxPriorityFeePerGas;
  }
  const hash = await wallet.sendTransaction(request);
  const receipt = await publicClient.waitForTransactionReceipt({ hash, pollingInterval: 200, timeout: 30_000 });
  expectEqual(`${name} receipt status`, receipt.status, 'success');
  const tx = await publicClient.getTransaction({ hash });
  expectEqual(`${name} type`, tx.type, fields.type);
  expectEqual(`${name} from`, tx.from, account.address);
  expectEqual(`${name} to`, tx.to, recipient);
  expectEqual(`${name} value`, tx.value, 1234n);
  expectEqual(`${name} input`, tx.input, '0x0102');
  expectEqual(`${name} chainId`, tx.chainId, chain.id);
  expectEqual(`${name} blockHash`, tx.blockHash, receipt.blockHash);
  if (fields.gasPrice !== undefined) expectEqual(`${name} gasPrice`, tx.gasPrice, fields.gasPrice);
  if (fields.accessList) expectEqual(`${name} accessList`, tx.accessList, fields.accessList);
  if (request.maxFeePerGas !== undefined) {
    expectEqual(`${name} maxFeePerGas`, tx.maxFeePerGas, request.maxFeePerGas);
    expectEqual(`${name} maxPriorityFeePerGas`, tx.maxPriorityFeePerGas, request.maxPriorityFeePerGas);
  }
  if (request.authorizationList) {
    const [sent] = request.authorizationList;
    const [got] = tx.authorizationList;
    expectEqual(`${name} authorization address`, got.address, sent.address);
    expectEqual(`${name} authorization nonce`, got.nonce, sent.nonce);
    // r and s are quantities on the wire (as geth sends them): compare the numbers.
    expectEqual(`${name} authorization r`, BigInt(got.r), BigInt(sent.r));
    expectEqual(`${name} authorization s`, BigInt(got.s), BigInt(sent.s));
  }
  // What viem read back is enough to rebuild the signed bytes: they hash to the same hash.
  const signature = { r: tx.r, s: tx.s, ...(tx.type === 'legacy' ? { v: tx.v } : { yParity: tx.yParity }) };
  const rebuilt = serializeTransaction({ ...tx, data: tx.input }, signature);
  expectEqual(`${name} rebuilt hash`, keccak256(rebuilt), hash);
  console.log(`${name}: ${hash} mined in block ${receipt.blockNumber}, every field as sent`);
}
