// An independent peer for Tidepool's wire protocol, written from PROTOCOL.md with js-libp2p and
// its gossipsub (versions pinned in package.json): TCP, noise, yamux, identify; gossipsub with
// StrictNoSign and message id = keccak-256 of the data; the announce topic and the fetch
// protocol (/tidepool/fetch/1, CBOR). It dials one node, does what the flags say, and prints one
// JSON object per line for every event, then a summary.
//
// Usage: node tools/js-peer.mjs --dial <multiaddr> --chain <id> --seconds <n>
//          [--no-ping]                 run without the ping service (the connection monitor
//                                      still pings, as js-libp2p does by default)
//          [--publish <hex>]...        publish these transactions on the transaction topic
//          [--announce <hex>]...       announce these transactions and serve their fetches
//          [--flood-file <path>]       publish every line of the file (hex) as fast as possible
import { noise } from '@chainsafe/libp2p-noise';
import { yamux } from '@chainsafe/libp2p-yamux';
import { gossipsub } from '@libp2p/gossipsub';
import { identify } from '@libp2p/identify';
import { ping } from '@libp2p/ping';
import { tcp } from '@libp2p/tcp';
import { multiaddr } from '@multiformats/multiaddr';
import { decode as cborDecode, encode as cborEncode } from 'cborg';
import { readFileSync } from 'node:fs';
import { createLibp2p } from 'libp2p';
import { bytesToHex, hexToBytes, keccak256 } from 'viem';

const args = process.argv.slice(2);
const flag = (name) => args.includes(name);
const value = (name) => args[args.indexOf(name) + 1];
const values = (name) => args.flatMap((arg, i) => (arg === name ? [args[i + 1]] : []));

const chainId = value('--chain');
const seconds = Number(value('--seconds') ?? '10');
const txTopic = `/tidepool/${chainId}/txs/1`;
const announceTopic = `/tidepool/${chainId}/announce/1`;
const fetchProtocol = '/tidepool/fetch/1';
const emit = (event) => console.log(JSON.stringify({ at: Math.round(performance.now()), ...event }));

// Transactions this peer holds and serves, by hash.
const held = new Map();
for (const hex of values('--announce')) held.set(keccak256(hex), hexToBytes(hex));

const node = await createLibp2p({
  transports: [tcp()],
  connectionEncrypters: [noise()],
  streamMuxers: [yamux()],
  services: {
    identify: identify(),
    ...(flag('--no-ping') ? {} : { ping: ping() }),
    pubsub: gossipsub({
      globalSignaturePolicy: 'StrictNoSign',
      msgIdFn: (message) => hexToBytes(keccak256(message.data)),
      allowPublishToZeroTopicPeers: true,
      emitSelf: false,
    }),
  },
});

/** Reads a whole stream (the remote half-closes after its message). */
async function readAll(stream) {
  const chunks = [];
  for await (const chunk of stream) chunks.push(chunk.subarray ? chunk.subarray() : chunk);
  return Buffer.concat(chunks);
}

await node.handle(fetchProtocol, async (stream) => {
  const request = cborDecode(await readAll(stream));
  const hashes = request.hashes.map((hash) => bytesToHex(hash));
  const txs = hashes.filter((hash) => held.has(hash)).map((hash) => held.get(hash));
  stream.send(cborEncode({ txs }));
  await stream.close();
  emit({ event: 'served', hashes, count: txs.length });
});

/** Fetches announced hashes from `peer` over the fetch protocol. */
async function fetchFrom(peer, hashes) {
  const stream = await node.dialProtocol(peer, fetchProtocol);
  const reading = readAll(stream);
  stream.send(cborEncode({ hashes: hashes.map((hash) => hexToBytes(hash)) }));
  await stream.close();
  const response = cborDecode(await reading);
  for (const tx of response.txs) {
    emit({ event: 'fetched', hash: keccak256(tx), tx: bytesToHex(tx) });
  }
}

let disconnects = 0;
node.addEventListener('peer:disconnect', () => {
  disconnects += 1;
  emit({ event: 'disconnected' });
});
node.services.pubsub.addEventListener('gossipsub:message', (evt) => {
  const { msgId, msg, propagationSource } = evt.detail;
  const data = msg.data;
  if (msg.topic === txTopic) {
    emit({ event: 'message', topic: msg.topic, data: bytesToHex(data), msgId: bytesToHex(Buffer.from(msgId, 'base64')) });
  } else if (msg.topic === announceTopic) {
    // 8-byte salt, then entries of a 32-byte hash and a 4-byte big-endian size.
    const hashes = [];
    for (let at = 8; at + 36 <= data.length; at += 36) hashes.push(bytesToHex(data.subarray(at, at + 32)));
    emit({ event: 'announcement', hashes });
    fetchFrom(propagationSource, hashes).catch((e) => emit({ event: 'fetch_failed', error: String(e) }));
  }
});
node.services.pubsub.subscribe(txTopic);
node.services.pubsub.subscribe(announceTopic);

const target = multiaddr(value('--dial'));
await node.dial(target);
emit({ event: 'connected' });

// Publishing waits until the node's subscription has arrived.
const deadline = Date.now() + 10_000;
while (node.services.pubsub.getSubscribers(txTopic).length === 0 && Date.now() < deadline) {
  await new Promise((resolve) => setTimeout(resolve, 50));
}
for (const hex of values('--publish')) {
  const result = await node.services.pubsub.publish(txTopic, hexToBytes(hex));
  emit({ event: 'published', hash: keccak256(hex), recipients: result.recipients.length });
}
if (held.size > 0) {
  const salt = new Uint8Array(8);
  crypto.getRandomValues(salt);
  const entries = [...held.entries()].map(([hash, tx]) => {
    const entry = new Uint8Array(36);
    entry.set(hexToBytes(hash), 0);
    new DataView(entry.buffer).setUint32(32, tx.length);
    return entry;
  });
  const result = await node.services.pubsub.publish(announceTopic, Buffer.concat([salt, ...entries]));
  emit({ event: 'announced', hashes: [...held.keys()], recipients: result.recipients.length });
}
const floodFile = value('--flood-file');
if (floodFile && args.includes('--flood-file')) {
  let sent = 0;
  for (const line of readFileSync(floodFile, 'utf8').split('\n').filter(Boolean)) {
    try {
      await node.services.pubsub.publish(txTopic, hexToBytes(line));
      sent += 1;
    } catch (e) {
      // No connected peer left to publish to: the node has dropped us.
      emit({ event: 'flood_stopped', sent, error: String(e) });
      break;
    }
  }
  emit({ event: 'flooded', sent });
  // A peer the node refuses cannot come back: the dial fails, or the node closes the new
  // connection at once.
  await new Promise((resolve) => setTimeout(resolve, 500));
  let error = null;
  try {
    await node.dial(target);
  } catch (e) {
    error = String(e);
  }
  await new Promise((resolve) => setTimeout(resolve, 1_000));
  emit({ event: 'redial', connected: node.getConnections().length > 0, error });
}

await new Promise((resolve) => setTimeout(resolve, seconds * 1000));
emit({ event: 'summary', connected: node.getConnections().length > 0, disconnects });
await node.stop();
process.exit(0);
