// A js-libp2p peer for plexus's interop tests (crates/interop-tests/tests/js_libp2p.rs).
//
//   node peer.mjs <2|3> <yamux|mplex|quic> listen [--remote <peer id>] [--size <bytes>]
//   node peer.mjs <2|3> <yamux|mplex|quic> dial <multiaddr/p2p/id> [--size <bytes>]
//   node peer.mjs <2|3> <yamux|mplex> gossip
//
// Runs js-libp2p 2.x or 3.x (npm aliases in package.json) over TCP + Noise with
// exactly one muxer, or (3.x only, not in gossip mode) over QUIC alone
// (@chainsafe/libp2p-quic 2.x, Lodestar's QUIC transport: TLS 1.3 and QUIC's
// own streams, no Noise or muxer), with a key libp2p generates (Ed25519). Once
// connected to the remote peer (dialed, or the first to connect when listening)
// it pings it, identifies it, and runs the test protocol on two streams: one it
// opens (sends pattern 1, half-closes, reads pattern 2 to EOF) and one the
// remote opens (reads pattern 3 to EOF, sends pattern 4, closes). Received bytes
// are checked byte for byte as they arrive.
//
// stdout carries one line per event: the event name, then tab-separated
// key=value fields (lists joined with ","; tabs and newlines in values become
// spaces), so the Rust side needs no JSON parser:
//   started peer agent_version | listening addr | connected peer addr |
//   ping rtt_ms | identify peer agent_version protocol_version protocols
//   listen_addrs observed_addr public_key peer_store_agent_version
//   peer_store_protocols | stream role sent received | done | error where message
// After "done" the peer stays up (so the remote can ping and identify it) until
// stdin closes, then it stops and exits 0. Any failure prints "error" and exits 1.
//
// Gossip mode (gossipMain below) runs gossipsub configured like Lodestar's and takes one
// command per stdin line instead; stdin closing still stops it.
//
// mplex: @libp2p/mplex 12.x works with libp2p 3.x (peer @libp2p/interface ^3), so
// mplex is tested with both majors; upstream marks it deprecated (no flow control).
//
// quic: @chainsafe/libp2p-quic 2.x is for libp2p 3.x (@libp2p/interface ^3; 1.x was
// for 2.x and is not installed). It is a napi-rs module: npm installs the prebuilt
// binary for the platform as an optional dependency, no compiler. Its package asks
// for Node >= 22 and runs on 20 with the Promise.withResolvers shim below.

import { createHash } from 'node:crypto'
import { createInterface } from 'node:readline'

export const PROTOCOL = '/plexus-interop/1.0.0'

// Node 20 lacks Promise.withResolvers (Node >= 22), which both majors'
// dependencies call (it-queue, @libp2p/utils 7, yamux 8, ping 3). It is the only
// newer built-in they use; provide it before loading them (imports are dynamic).
if (typeof Promise.withResolvers !== 'function') {
  Promise.withResolvers = function withResolvers () {
    let resolve, reject
    const promise = new this((res, rej) => { resolve = res; reject = rej })
    return { promise, resolve, reject }
  }
}

function out (event, fields = {}) {
  const clean = (v) => String(v).replace(/[\t\r\n]+/g, ' ')
  const parts = [event]
  for (const [k, v] of Object.entries(fields)) {
    parts.push(`${k}=${clean(Array.isArray(v) ? v.join(',') : (v ?? ''))}`)
  }
  process.stdout.write(parts.join('\t') + '\n')
}

function fail (where, err) {
  out('error', { where, message: String(err?.stack ?? err) })
  process.exit(1)
}

// The pattern shared with js_libp2p.rs: xorshift32 from (seed * 0x9E3779B9) | 1,
// each step giving 4 bytes little-endian.
export function pattern (seed, len) {
  const buf = new Uint8Array(len + 3)
  let x = (Math.imul(seed, 0x9E3779B9) | 1) >>> 0
  for (let i = 0; i < len; i += 4) {
    x ^= x << 13
    x ^= x >>> 17
    x ^= x << 5
    x >>>= 0
    buf[i] = x & 0xff
    buf[i + 1] = (x >>> 8) & 0xff
    buf[i + 2] = (x >>> 16) & 0xff
    buf[i + 3] = x >>> 24
  }
  return buf.subarray(0, len)
}

// Checks bytes as they arrive against the expected pattern.
class Checker {
  constructor (what, seed, len) {
    this.what = what
    this.want = pattern(seed, len)
    this.got = 0
  }

  add (chunk) {
    // chunk: Uint8Array or Uint8ArrayList (iterable over its Uint8Arrays)
    const parts = chunk instanceof Uint8Array ? [chunk] : chunk
    for (const part of parts) {
      if (this.got + part.length > this.want.length) {
        throw new Error(`${this.what}: more than ${this.want.length} bytes`)
      }
      for (let i = 0; i < part.length; i++) {
        if (part[i] !== this.want[this.got + i]) {
          throw new Error(`${this.what}: wrong byte at offset ${this.got + i}`)
        }
      }
      this.got += part.length
    }
  }

  finish () {
    if (this.got !== this.want.length) {
      throw new Error(`${this.what}: EOF after ${this.got} of ${this.want.length} bytes`)
    }
    return this.got
  }
}

const CHUNK = 64 * 1024

// The stream API differs between the majors: 2.x streams are it-stream-types
// duplexes (sink/source, the sink half-closes when its source ends); 3.x streams
// are message streams (send/onDrain/close, async-iterable for reading).
const api = {
  2: {
    async send (stream, data) {
      await stream.sink((function * () {
        for (let i = 0; i < data.length; i += CHUNK) yield data.subarray(i, i + CHUNK)
      })())
    },
    async read (stream, checker) {
      for await (const chunk of stream.source) checker.add(chunk)
      return checker.finish()
    },
    handle (node, protocol, fn) {
      return node.handle(protocol, ({ stream, connection }) => fn(stream, connection))
    }
  },
  3: {
    async send (stream, data) {
      for (let i = 0; i < data.length; i += CHUNK) {
        if (!stream.send(data.subarray(i, i + CHUNK))) await stream.onDrain()
      }
      await stream.close()
    },
    async read (stream, checker) {
      for await (const chunk of stream) checker.add(chunk)
      return checker.finish()
    },
    handle (node, protocol, fn) {
      return node.handle(protocol, (stream, connection) => fn(stream, connection))
    }
  }
}

async function load (version, muxer) {
  const v = `v${version}`
  const { createLibp2p } = await import(`libp2p-${v}`)
  const { identify } = await import(`identify-${v}`)
  const { ping } = await import(`ping-${v}`)
  const { multiaddr } = await import(`multiaddr-${v}`)
  // What createLibp2p gets for the transport: QUIC alone, or TCP + Noise + the muxer.
  let stack
  if (muxer === 'quic') {
    const { quic } = await import(`quic-${v}`)
    stack = {
      listen: '/ip4/127.0.0.1/udp/0/quic-v1',
      transports: [quic()],
      connectionEncrypters: [],
      streamMuxers: []
    }
  } else {
    const { tcp } = await import(`tcp-${v}`)
    const { noise } = await import(`noise-${v}`)
    const mux = muxer === 'yamux'
      ? (await import(`yamux-${v}`)).yamux()
      : (await import(`mplex-${v}`)).mplex()
    stack = {
      listen: '/ip4/127.0.0.1/tcp/0',
      transports: [tcp()],
      connectionEncrypters: [noise()],
      streamMuxers: [mux]
    }
  }
  return { createLibp2p, identify, ping, multiaddr, stack }
}

function parseArgs (argv) {
  const [version, muxer, mode, ...rest] = argv
  const usage = 'usage: peer.mjs <2|3> <yamux|mplex|quic> listen|dial <multiaddr> [--remote <peer id>] [--size <bytes>] | <2|3> <yamux|mplex> gossip (quic with 3 only)'
  if (!['2', '3'].includes(version) || !['yamux', 'mplex', 'quic'].includes(muxer) || !['listen', 'dial', 'gossip'].includes(mode)) {
    throw new Error(usage)
  }
  if (muxer === 'quic' && (version !== '3' || mode === 'gossip')) throw new Error(usage)
  const args = { version: Number(version), muxer, mode, size: 16 * 1024 * 1024, remote: undefined, target: undefined }
  if (mode === 'dial') {
    args.target = rest.shift()
    if (args.target == null) throw new Error(usage)
  }
  while (rest.length > 0) {
    const flag = rest.shift()
    const value = rest.shift()
    if (value == null) throw new Error(usage)
    if (flag === '--size') args.size = Number(value)
    else if (flag === '--remote') args.remote = value
    else throw new Error(usage)
  }
  return args
}

async function main () {
  let args
  try {
    args = parseArgs(process.argv.slice(2))
  } catch (err) {
    process.stderr.write(`${err.message}\n`)
    process.exit(2)
  }
  const { version, muxer, mode, size } = args
  const lib = await load(version, muxer)
  if (mode === 'gossip') return gossipMain(version, lib)
  const v = api[version]

  const { listen, ...stack } = lib.stack
  const node = await lib.createLibp2p({
    addresses: { listen: mode === 'listen' ? [listen] : [] },
    ...stack,
    services: { identify: lib.identify(), ping: lib.ping() }
  })

  // The remote opens a stream to us: read pattern 3 to EOF, send pattern 4, close.
  let acceptedResolve
  const accepted = new Promise((resolve) => { acceptedResolve = resolve })
  await v.handle(node, PROTOCOL, async (stream) => {
    try {
      const received = await v.read(stream, new Checker('js acceptor', 3, size))
      await v.send(stream, pattern(4, size))
      acceptedResolve({ role: 'acceptor', sent: size, received })
    } catch (err) {
      fail('js acceptor', err)
    }
  })

  await node.start()
  out('started', { peer: node.peerId.toString(), agent_version: node.services.identify?.host?.agentVersion ?? null })

  let connection
  if (mode === 'listen') {
    const connected = new Promise((resolve) => {
      node.addEventListener('connection:open', (evt) => resolve(evt.detail), { once: true })
    })
    out('listening', { addr: `${node.getMultiaddrs()[0].toString()}` })
    connection = await connected
    if (args.remote != null && connection.remotePeer.toString() !== args.remote) {
      throw new Error(`connected to ${connection.remotePeer} instead of ${args.remote}`)
    }
  } else {
    connection = await node.dial(lib.multiaddr(args.target))
  }
  const remote = connection.remotePeer
  out('connected', { peer: remote.toString(), addr: connection.remoteAddr.toString() })

  const rtt = await node.services.ping.ping(remote).catch((err) => fail('ping', err))
  out('ping', { rtt_ms: rtt })

  const info = await node.services.identify.identify(connection).catch((err) => fail('identify', err))
  // The Rust side checks every field; here only what must hold for the rest.
  if (!info.peerId.equals(remote) || !(info.agentVersion ?? '').startsWith('plexus/') || !info.protocols.includes(PROTOCOL)) {
    fail('identify', `unexpected identify from ${remote}: agent ${info.agentVersion}, protocols ${info.protocols}`)
  }
  const stored = await node.peerStore.get(remote)
  const storedAgent = stored.metadata.get('AgentVersion')
  out('identify', {
    peer: info.peerId.toString(),
    agent_version: info.agentVersion ?? null,
    protocol_version: info.protocolVersion ?? null,
    protocols: info.protocols,
    listen_addrs: info.listenAddrs.map((a) => a.toString()),
    observed_addr: info.observedAddr?.toString() ?? null,
    public_key: info.publicKey != null ? 'yes' : 'no',
    peer_store_agent_version: storedAgent == null ? null : new TextDecoder().decode(storedAgent),
    peer_store_protocols: stored.protocols
  })

  // We open a stream: send pattern 1, half-close, read pattern 2 to EOF. The
  // reader is attached before sending so nothing arrives without a consumer.
  const opened = (async () => {
    const stream = await connection.newStream(PROTOCOL)
    const reading = v.read(stream, new Checker('js opener', 2, size))
    await v.send(stream, pattern(1, size))
    const received = await reading
    return { role: 'opener', sent: size, received }
  })()
  out('stream', await opened.catch((err) => fail('js opener', err)))
  out('stream', await accepted)
  out('done')

  // Stay up for the remote's own checks until stdin closes.
  process.stdin.resume()
  await new Promise((resolve) => process.stdin.on('end', resolve).on('close', resolve))
  await node.stop()
  process.exit(0)
}

// ---------- gossip mode ----------
//
// Gossipsub configured like Lodestar's: StrictNoSign, a content message id (msgId below,
// the same function the Rust side gives plexus), a fast message id on the data, async
// validation, flood publish and no PX; the mesh degrees, the heartbeat and the IDONTWANT
// threshold are shrunk for a three-node test. 2.x runs @chainsafe/libp2p-gossipsub 14.x
// (the last ChainSafe major; it needs libp2p 2.x's @libp2p/interface 2), 3.x runs
// @libp2p/gossipsub 17.x (gossipsub moved into the js-libp2p monorepo for libp2p 3). Both
// speak /meshsub/1.2.0 at most and send IDONTWANT; 14.x records a received IDONTWANT but
// still forwards the message to its sender, 17.x skips it.
//
// It listens on 127.0.0.1, prints "started" and "listening", then reads commands (one per
// stdin line, tab-separated) and answers each with one line:
//   dial <multiaddr>                     -> dialed peer
//   subscribe <topic>                    -> subscribed topic
//   unsubscribe <topic>                  -> unsubscribed topic
//   wait_mesh <topic> <peer,...> <ms>    -> mesh topic peers grafted
//       (once the mesh holds every peer listed; grafted: peer:direction of each
//       gossipsub:graft event, inbound = the peer sent GRAFT)
//   publish <topic> <hex data>           -> published id recipients
//   wait_message <id> <ms>               -> message id from topic data
//       (from: the propagation source of the first copy; a message under 1 KiB is
//       accepted at once, a larger one waits for validate)
//   validate <id> <accept|ignore|reject> -> validated id
//   wait_idontwant <peer> <id> <ms>      -> idontwant peer ids
//       (once an IDONTWANT for id came from peer; ids: every IDONTWANT id from it)
//   wait_prune <topic> <peer> <ms>       -> prune peer topic direction
//       (once the peer sent PRUNE for topic: a gossipsub:prune event, inbound)
// Ids and data are hex. A wait that runs out, or any other failure, prints "error".

// The message id, as Lodestar computes it minus the snappy/domain part: the first 20 bytes
// of SHA-256(topic length as u64 little-endian ‖ topic ‖ data).
export function msgId (topic, data) {
  const t = Buffer.from(topic, 'utf8')
  const len = Buffer.alloc(8)
  len.writeBigUInt64LE(BigInt(t.length))
  const digest = createHash('sha256').update(len).update(t).update(data).digest()
  return new Uint8Array(digest.subarray(0, 20))
}

// Messages this large (the IDONTWANT threshold) wait for a validate command, so the
// test decides when they are forwarded; smaller ones are accepted at once.
const HOLD = 1024

const hex = (bytes) => Buffer.from(bytes).toString('hex')
const unhex = (s) => new Uint8Array(Buffer.from(s, 'hex'))

async function waitFor (what, ms, check) {
  const end = Date.now() + ms
  for (;;) {
    const found = check()
    if (found != null) return found
    if (Date.now() >= end) throw new Error(`no ${what} within ${ms} ms`)
    await new Promise((resolve) => setTimeout(resolve, 20))
  }
}

async function gossipMain (version, lib) {
  const { gossipsub } = await import(`gossipsub-v${version}`)
  const { listen, ...stack } = lib.stack
  const node = await lib.createLibp2p({
    addresses: { listen: [listen] },
    ...stack,
    services: {
      identify: lib.identify(),
      ping: lib.ping(),
      pubsub: gossipsub({
        globalSignaturePolicy: 'StrictNoSign',
        msgIdFn: (msg) => msgId(msg.topic, msg.data),
        msgIdToStrFn: hex,
        // Lodestar: xxhash64 of the data; any hash of the data does here.
        fastMsgIdFn: (rpcMsg) => createHash('sha1').update(rpcMsg.data ?? new Uint8Array(0)).digest('base64'),
        asyncValidation: true,
        floodPublish: true,
        doPX: false,
        D: 2,
        Dlo: 2,
        Dhi: 4,
        Dscore: 1,
        Dout: 0,
        Dlazy: 2,
        heartbeatInterval: 100,
        fanoutTTL: 60_000,
        mcacheLength: 6,
        mcacheGossip: 3,
        seenTTL: 768_000,
        // A publish with no peer is an error the test should see.
        allowPublishToZeroTopicPeers: false,
        // Below the test's 4 KiB message, above its small ones.
        idontwantMinDataSize: HOLD,
        emitSelf: false
      })
    }
  })
  const pubsub = node.services.pubsub

  const messages = new Map() // id -> { from, topic, data }
  const grafts = [] // { peer, topic, direction }
  const prunes = []
  const idontwants = new Map() // peer -> [id]
  pubsub.addEventListener('gossipsub:message', (evt) => {
    const { propagationSource, msgId: id, msg } = evt.detail
    const from = propagationSource.toString()
    if (!messages.has(id)) messages.set(id, { from, topic: msg.topic, data: hex(msg.data) })
    if (msg.data.length < HOLD) pubsub.reportMessageValidationResult(id, from, 'accept')
  })
  const meshEvent = (list) => (evt) => {
    const { peerId, topic, direction } = evt.detail
    list.push({ peer: peerId.toString(), topic, direction })
  }
  pubsub.addEventListener('gossipsub:graft', meshEvent(grafts))
  pubsub.addEventListener('gossipsub:prune', meshEvent(prunes))
  // No public counter of received IDONTWANT: wrap the handler (an instance property
  // shadows the prototype's method, which the RPC handler calls as this.handleIdontwant).
  if (typeof pubsub.handleIdontwant !== 'function') {
    throw new Error('this gossipsub has no handleIdontwant to count IDONTWANT with')
  }
  const handleIdontwant = pubsub.handleIdontwant
  pubsub.handleIdontwant = function (peer, entries) {
    const ids = idontwants.get(peer) ?? []
    for (const { messageIDs } of entries) {
      for (const id of messageIDs ?? []) ids.push(hex(id))
    }
    idontwants.set(peer, ids)
    return handleIdontwant.call(this, peer, entries)
  }

  await node.start()
  out('started', { peer: node.peerId.toString(), agent_version: node.services.identify?.host?.agentVersion ?? null })
  out('listening', { addr: node.getMultiaddrs()[0].toString() })

  const commands = {
    async dial ([addr]) {
      const connection = await node.dial(lib.multiaddr(addr))
      out('dialed', { peer: connection.remotePeer.toString() })
    },
    async subscribe ([topic]) {
      pubsub.subscribe(topic)
      out('subscribed', { topic })
    },
    async unsubscribe ([topic]) {
      pubsub.unsubscribe(topic)
      out('unsubscribed', { topic })
    },
    async wait_mesh ([topic, peers, ms]) {
      const want = peers.split(',').filter((p) => p !== '')
      const mesh = await waitFor(`mesh of ${topic} with ${want}`, Number(ms), () => {
        const have = pubsub.getMeshPeers(topic).map(String)
        return want.every((p) => have.includes(p)) ? have : null
      })
      const grafted = grafts.filter((g) => g.topic === topic).map((g) => `${g.peer}:${g.direction}`)
      out('mesh', { topic, peers: mesh, grafted })
    },
    async publish ([topic, data]) {
      const bytes = unhex(data)
      const { recipients } = await pubsub.publish(topic, bytes)
      out('published', { id: hex(msgId(topic, bytes)), recipients: recipients.map(String) })
    },
    async wait_message ([id, ms]) {
      const m = await waitFor(`message ${id}`, Number(ms), () => messages.get(id))
      out('message', { id, from: m.from, topic: m.topic, data: m.data })
    },
    async validate ([id, verdict]) {
      const m = messages.get(id)
      if (m == null) throw new Error(`no message ${id} to validate`)
      pubsub.reportMessageValidationResult(id, m.from, verdict)
      out('validated', { id })
    },
    async wait_idontwant ([peer, id, ms]) {
      const ids = await waitFor(`IDONTWANT ${id} from ${peer}`, Number(ms), () => {
        const ids = idontwants.get(peer) ?? []
        return ids.includes(id) ? ids : null
      })
      out('idontwant', { peer, ids })
    },
    async wait_prune ([topic, peer, ms]) {
      const p = await waitFor(`PRUNE of ${topic} from ${peer}`, Number(ms), () =>
        prunes.find((p) => p.topic === topic && p.peer === peer && p.direction === 'inbound'))
      out('prune', p)
    }
  }

  const lines = createInterface({ input: process.stdin, crlfDelay: Infinity })
  for await (const line of lines) {
    if (line.trim() === '') continue
    const [name, ...rest] = line.split('\t')
    const command = commands[name]
    if (command == null) fail('command', `unknown command ${JSON.stringify(name)}`)
    await command(rest).catch((err) => fail(name, err))
  }
  await node.stop()
  process.exit(0)
}

process.on('unhandledRejection', (err) => fail('unhandled rejection', err))
main().catch((err) => fail('main', err))
