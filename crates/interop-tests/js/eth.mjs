// Ethereum Req/Resp and gossip encoding from Lodestar's published packages, for plexus's
// interop tests (crates/interop-tests/tests/js_eth.rs).
//
//   node eth.mjs codec                          no libp2p: fork digests, blocks, gossip encoding
//   node eth.mjs node <yamux|mplex> <current|old>
//       a js-libp2p 2.x node (TCP, Noise, exactly one muxer) on 127.0.0.1 that answers
//       Req/Resp and sends requests; "current" serves status/2 and /1, metadata/3, /2 and /1,
//       "old" (a pre-Fulu client) only status/1 and metadata/2 and /1; both serve ping/1,
//       goodbye/1 and beacon_blocks_by_range/2.
//
// What is Lodestar's and what is ours:
// - The wire format is @lodestar/reqresp 1.5.1's codec (the newest the registry here offers):
//   requestEncode / requestDecode / responseEncodeSuccess / responseEncodeError and, for
//   reading responses, its readResultHeader, readContextBytesForkDigest and
//   readEncodedPayload (varint, ssz bounds, snappy frames via snappyjs, SSZ). Its package
//   exports only the ReqResp class (for libp2p 0.41), so the codec modules are imported by
//   file URL. Its compressor is @chainsafe/snappy-stream over `snappy`, overridden in
//   package.json from 6.x (a node-gyp build) to 7.2.2 (prebuilt napi-rs binaries, same
//   compressSync); its peer dependency libp2p 0.41 (about 45 MB, unused here) is overridden
//   to the libp2p 2.10.0 already installed as libp2p-v2.
// - SSZ types are @lodestar/types 1.50.0 (@chainsafe/ssz), fork digests (BPO forks included)
//   and the fork of each slot are @lodestar/config 1.48.0 with its built-in mainnet config and
//   genesis validators root.
// - Gossip snappy (block format) is snappyjs 0.7.0; the message id's SHA-256 is node:crypto.
// - Ours: this glue, and two workarounds for 1.5.1's response reader, both in readResponse:
//   (1) its snappy frame reader is handed everything buffered, so when two response chunks
//   arrive in one read it parses the next chunk's result byte as a frame ("Unsupported snappy
//   chunk type"); splitChunks below cuts the byte stream at chunk boundaries (from the frame
//   headers only) and hands each chunk to Lodestar alone; (2) its responseDecode reads an
//   error message as raw bytes (frames and all) instead of ssz_snappy, so error chunks are
//   read with readEncodedPayload as the spec's ErrorMessage (List[byte, 256]).
//
// It prints "started" (and "listening addr" in node mode), then reads one command per stdin
// line (tab-separated) and answers each with one line; stdout lines are the event, then
// tab-separated key=value fields (lists joined with ","). SSZ containers are printed and
// given in their JSON form (spec field names, numbers as decimal, bytes as 0x-hex).
//   digests <network>                 -> digests network entries (fork@epoch:digest, each
//                                        fork boundary, BPO forks included)
//   make_block <slot>                 -> block slot fork context ssz
//   gossip_encode <topic> <hex ssz>   -> gossip_encoded fork data id
//   gossip_decode <topic> <hex data>  -> gossip_decoded fork valid ssz id
//   (node mode)
//   set_status k=v...                 -> status_set      (what we answer; v2 fields)
//   set_metadata k=v...               -> metadata_set    (v3 fields)
//   serve_blocks <slot,...>           -> blocks_set      (the slots we have blocks for)
//   dial <multiaddr>                  -> dialed peer
//   request_status <1|2> k=v...       -> status protocol fields... | response_error
//   request_ping <n>                  -> ping protocol value | response_error
//   request_metadata <1|2|3>          -> metadata protocol fields... | response_error
//   request_blocks <start> <count>    -> one "block slot fork context ssz" per chunk, then
//                                        blocks count error_code error_message
//   request_goodbye <reason>          -> goodbye_sent
// Inbound requests print "request protocol fields..." and, per chunk sent, "served protocol
// [slot fork context ssz]" or "served_error protocol code message". A by-range request whose
// start is before the status's earliest_available_slot is answered ResourceUnavailable.
// Requests to the remote go to the peer last dialed or, if none, the first that connected.
// Any failure prints "error where message" and exits 1; stdin closing stops it (exit 0).

import { createHash } from 'node:crypto'
import { createInterface } from 'node:readline'

// Node 20 lacks Promise.withResolvers, which libp2p's dependencies call (see peer.mjs).
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

const hex = (bytes) => Buffer.from(bytes).toString('hex')
const unhex = (s) => new Uint8Array(Buffer.from(s, 'hex'))
const sha256 = (...parts) => {
  const h = createHash('sha256')
  for (const p of parts) h.update(p)
  return new Uint8Array(h.digest())
}
/** Time for each command's network round trip. */
const WAIT_MS = 10_000

async function withTimeout (what, promise) {
  let timer
  const timeout = new Promise((_resolve, reject) => {
    timer = setTimeout(() => reject(new Error(`${what}: no answer within ${WAIT_MS} ms`)), WAIT_MS)
  })
  try {
    return await Promise.race([promise, timeout])
  } finally {
    clearTimeout(timer)
  }
}

// ---------- Lodestar ----------

async function loadLodestar () {
  const { ssz } = await import('@lodestar/types')
  const { SLOTS_PER_EPOCH } = await import('@lodestar/params')
  const { createBeaconConfig } = await import('@lodestar/config')
  const networks = await import('@lodestar/config/networks')
  const { ByteListType } = await import('@chainsafe/ssz')
  const snappyjs = (await import('snappyjs')).default
  // The codec modules of @lodestar/reqresp 1.5.1, which its "exports" map does not list.
  const base = new URL('./node_modules/@lodestar/reqresp/lib/', import.meta.url)
  const load = (path) => import(new URL(path, base).href)
  const { requestEncode } = await load('encoders/requestEncode.js')
  const { requestDecode } = await load('encoders/requestDecode.js')
  const { responseEncodeSuccess, responseEncodeError } = await load('encoders/responseEncode.js')
  const { readResultHeader, readContextBytesForkDigest } = await load('encoders/responseDecode.js')
  const { readEncodedPayload } = await load('encodingStrategies/index.js')
  const { BufferedSource } = await load('utils/bufferedSource.js')
  const { Encoding, ContextBytesType, EncodedPayloadType } = await load('types.js')
  const { RespStatus } = await load('interface.js')

  const configs = {}
  for (const name of ['mainnet', 'sepolia', 'hoodi']) {
    const gvr = unhex(networks.genesisData[name].genesisValidatorsRoot.replace(/^0x/, ''))
    configs[name] = createBeaconConfig(networks[`${name}ChainConfig`], gvr)
  }
  return {
    ssz,
    SLOTS_PER_EPOCH,
    configs,
    config: configs.mainnet,
    ErrorMessage: new ByteListType(256),
    snappyjs,
    requestEncode,
    requestDecode,
    responseEncodeSuccess,
    responseEncodeError,
    readResultHeader,
    readContextBytesForkDigest,
    readEncodedPayload,
    BufferedSource,
    Encoding,
    ContextBytesType,
    EncodedPayloadType,
    RespStatus
  }
}

/** The fork boundary (fork and first epoch; BPO forks have their own) of `slot`. */
function boundaryAt (L, slot) {
  return L.config.getForkBoundaryAtEpoch(Math.floor(Number(slot) / L.SLOTS_PER_EPOCH))
}

function digestAt (L, slot) {
  return L.config.forkBoundary2ForkDigest(boundaryAt(L, slot))
}

/**
 * A block of the fork at `slot`, with the slot, a proposer, roots, graffiti, a signature and
 * (from Bellatrix) an execution payload with two transactions, so it is not all zeros.
 */
function makeBlock (L, slot) {
  const fork = boundaryAt(L, slot).fork
  const type = L.ssz[fork].SignedBeaconBlock
  const b = type.defaultValue()
  const m = b.message
  const seed = (tag) => sha256(Buffer.from(`${tag} ${slot}`))
  m.slot = Number(slot)
  m.proposerIndex = Number(slot) % 1_000_000
  m.parentRoot = seed('parent')
  m.stateRoot = seed('state')
  m.body.graffiti = seed('graffiti')
  m.body.randaoReveal = new Uint8Array(96).fill(slot % 251)
  b.signature = new Uint8Array(96).fill((slot * 7) % 251)
  const payload = m.body.executionPayload
  if (payload != null) {
    payload.blockNumber = Number(slot) + 1
    payload.blockHash = seed('block hash')
    payload.transactions = [new Uint8Array(120).fill(1), seed('tx').subarray(0, 20)]
  }
  const bytes = type.serialize(b)
  return { fork, type, value: b, bytes, context: digestAt(L, slot) }
}

// ---------- Req/Resp ----------

const PREFIX = '/eth2/beacon_chain/req'
const protocolId = (p) => `${PREFIX}/${p.method}/${p.version}/ssz_snappy`

/** The protocols: their request type, and response type by fork (when they have context). */
function protocols (L) {
  const { ssz } = L
  return {
    status2: { method: 'status', version: 2, request: ssz.fulu.Status, response: () => ssz.fulu.Status },
    status1: { method: 'status', version: 1, request: ssz.phase0.Status, response: () => ssz.phase0.Status },
    goodbye1: { method: 'goodbye', version: 1, request: ssz.phase0.Goodbye, response: () => ssz.phase0.Goodbye },
    ping1: { method: 'ping', version: 1, request: ssz.phase0.Ping, response: () => ssz.phase0.Ping },
    metadata1: { method: 'metadata', version: 1, request: null, response: () => ssz.phase0.Metadata },
    metadata2: { method: 'metadata', version: 2, request: null, response: () => ssz.altair.Metadata },
    metadata3: { method: 'metadata', version: 3, request: null, response: () => ssz.fulu.Metadata },
    blocksByRange2: {
      method: 'beacon_blocks_by_range',
      version: 2,
      request: ssz.phase0.BeaconBlocksByRangeRequest,
      response: (fork) => ssz[fork].SignedBeaconBlock,
      context: true
    }
  }
}

/**
 * The ProtocolDefinition shape 1.5.1's encoders read. Its context bytes map a "fork name" to a
 * digest, which predates BPO forks (one fork, several digests), so the "fork name" handed
 * around here is a boundary key, fork:epoch.
 */
function lodestarProtocol (L, p) {
  const key = (b) => `${b.fork}:${b.epoch}`
  const fromKey = (k) => {
    const [fork, epoch] = k.split(':')
    return { fork, epoch: Number(epoch) }
  }
  return {
    method: p.method,
    version: p.version,
    encoding: L.Encoding.SSZ_SNAPPY,
    requestType: () => p.request,
    responseType: (k) => p.context ? p.response(fromKey(k).fork) : p.response(),
    contextBytes: p.context
      ? {
          type: L.ContextBytesType.ForkDigest,
          forkFromResponse: (block) => key(boundaryAt(L, block.message.slot)),
          forkDigestContext: {
            forkName2ForkDigest: (k) => L.config.forkBoundary2ForkDigest(fromKey(k)),
            forkDigest2ForkName: (d) => key(L.config.forkDigest2ForkBoundary(d))
          }
        }
      : { type: L.ContextBytesType.Empty }
  }
}

/** A JSON field list for out(): "k=v" pairs of a flat container (or a bare value). */
function jsonFields (type, value) {
  const json = type.toJson(value)
  return typeof json === 'object' ? json : { value: json }
}

/** Parse "k=v" command arguments into the JSON form of a container. */
function parseFields (args) {
  const json = {}
  for (const a of args) {
    const i = a.indexOf('=')
    if (i < 0) throw new Error(`not key=value: ${a}`)
    json[a.slice(0, i)] = a.slice(i + 1)
  }
  return json
}

/**
 * Each whole response_chunk of a byte stream, as its own Uint8Array: result, context bytes
 * (success chunks of protocols with them), the varint length n, then snappy frames up to n
 * uncompressed bytes (a compressed frame's count is its block's varint preamble). Only the
 * boundaries are read here; everything is checked and decoded by Lodestar.
 */
async function * splitChunks (source, hasContext) {
  const { Uint8ArrayList } = await import('uint8arraylist')
  const buf = new Uint8ArrayList()
  const it = source[Symbol.asyncIterator]()
  let ended = false
  const need = async (n) => {
    while (buf.length < n && !ended) {
      const { done, value } = await it.next()
      if (done) ended = true
      else buf.append(value)
    }
    return buf.length >= n
  }
  const varintAt = async (pos) => {
    let value = 0
    for (let shift = 0; shift < 64; shift += 7) {
      if (!(await need(pos + 1))) return null
      const b = buf.get(pos++)
      value += (b & 0x7f) * 2 ** shift
      if (b < 0x80) return { value, pos }
    }
    return { value: Infinity, pos }
  }
  for (;;) {
    if (!(await need(1))) return
    let pos = 1
    if (buf.get(0) === 0 && hasContext) pos += 4
    const len = await varintAt(pos)
    if (len == null || !Number.isFinite(len.value)) break
    pos = len.pos
    let got = 0
    while (got < len.value) {
      if (!(await need(pos + 4))) break
      const type = buf.get(pos)
      const size = buf.get(pos + 1) | (buf.get(pos + 2) << 8) | (buf.get(pos + 3) << 16)
      if (!(await need(pos + 4 + size))) break
      if (type === 0x00) {
        const n = await varintAt(pos + 8)
        got += n == null ? Infinity : n.value
      } else if (type === 0x01) {
        got += size - 4
      }
      pos += 4 + size
    }
    if (got < len.value) break
    yield buf.subarray(0, pos)
    buf.consume(pos)
  }
  // Whatever is left (a broken chunk): Lodestar's reader reports it.
  if (buf.length > 0) yield buf.subarray()
  for (;;) {
    const { done, value } = await it.next()
    if (done) return
    yield value.subarray()
  }
}

/**
 * Read a whole response with Lodestar's reader pieces: success chunks (context digest, the
 * boundary it maps to, the value and its SSZ bytes) and the final error, if any.
 */
async function readResponse (L, p, source) {
  const src = new L.BufferedSource(splitChunks(source, p.context)[Symbol.asyncIterator]())
  const chunks = []
  for (;;) {
    const status = await L.readResultHeader(src)
    if (status === 'STREAM_ENDED') return { chunks }
    if (status !== L.RespStatus.SUCCESS) {
      const message = await L.readEncodedPayload(src, L.Encoding.SSZ_SNAPPY, L.ErrorMessage)
      return { chunks, error: { code: status, message: Buffer.from(message).toString('utf8') } }
    }
    let context = null
    let boundary = null
    if (p.context) {
      context = await L.readContextBytesForkDigest(src)
      boundary = L.config.forkDigest2ForkBoundary(context)
    }
    const type = p.response(boundary?.fork)
    const value = await L.readEncodedPayload(src, L.Encoding.SSZ_SNAPPY, type)
    chunks.push({ type, value, ssz: type.serialize(value), context, fork: boundary?.fork })
  }
}

async function collect (iterable) {
  const parts = []
  for await (const part of iterable) parts.push(part)
  return parts
}

// ---------- the node ----------

async function startNode (muxer, generation, L) {
  const { createLibp2p } = await import('libp2p-v2')
  const { tcp } = await import('tcp-v2')
  const { noise } = await import('noise-v2')
  const mux = muxer === 'yamux'
    ? (await import('yamux-v2')).yamux()
    : (await import('mplex-v2')).mplex()
  const { multiaddr } = await import('multiaddr-v2')
  const node = await createLibp2p({
    addresses: { listen: ['/ip4/127.0.0.1/tcp/0'] },
    transports: [tcp()],
    connectionEncrypters: [noise()],
    streamMuxers: [mux]
  })
  const P = protocols(L)
  const state = {
    status: L.ssz.fulu.Status.defaultValue(),
    metadata: L.ssz.fulu.Metadata.defaultValue(),
    blocks: new Set(),
    remote: null
  }
  node.addEventListener('connection:open', (evt) => {
    if (state.remote == null) state.remote = evt.detail.remotePeer
  })

  const served = generation === 'current'
    ? ['status2', 'status1', 'goodbye1', 'ping1', 'metadata3', 'metadata2', 'metadata1', 'blocksByRange2']
    : ['status1', 'goodbye1', 'ping1', 'metadata2', 'metadata1', 'blocksByRange2']

  // The answer to a request: a list of payloads to send, or a { code, message } error.
  function answer (name, body) {
    const md = state.metadata
    switch (name) {
      case 'status2': return [state.status]
      case 'status1': return [state.status]
      case 'ping1': return [md.seqNumber]
      case 'metadata1': case 'metadata2': case 'metadata3': return [md]
      case 'goodbye1': return []
      case 'blocksByRange2': {
        const earliest = state.status.earliestAvailableSlot
        if (body.startSlot < earliest) {
          return { code: L.RespStatus.RESOURCE_UNAVAILABLE, message: `js: slots before ${earliest} are pruned` }
        }
        const slots = [...state.blocks].filter((s) => s >= body.startSlot && s < body.startSlot + body.count)
        return slots.sort((a, b) => a - b).map((s) => makeBlock(L, s).value)
      }
    }
    throw new Error(`no answer for ${name}`)
  }

  for (const name of served) {
    const p = P[name]
    const lp = lodestarProtocol(L, p)
    const id = protocolId(p)
    await node.handle(id, async ({ stream }) => {
      try {
        const body = await L.requestDecode(lp)(stream.source[Symbol.asyncIterator]())
        out('request', { protocol: id, ...(p.request == null ? {} : jsonFields(p.request, body)) })
        const a = answer(name, body)
        if (!Array.isArray(a)) {
          await stream.sink(L.responseEncodeError(lp, a.code, a.message))
          out('served_error', { protocol: id, code: a.code, message: a.message })
          return
        }
        const chunks = a.map((data) => ({ type: L.EncodedPayloadType.ssz, data }))
        await stream.sink(L.responseEncodeSuccess(lp)(chunks))
        for (const data of a) {
          if (p.context) {
            const b = makeBlock(L, data.message.slot)
            out('served', { protocol: id, slot: data.message.slot, fork: b.fork, context: hex(b.context), ssz: hex(b.bytes) })
          } else {
            out('served', { protocol: id })
          }
        }
      } catch (err) {
        fail(`serving ${id}`, err)
      }
    })
  }
  await node.start()
  out('started', { peer: node.peerId.toString() })
  out('listening', { addr: node.getMultiaddrs()[0].toString() })

  /** Send one request to the remote and read its whole response. */
  async function request (name, body) {
    const p = P[name]
    const lp = lodestarProtocol(L, p)
    const id = protocolId(p)
    if (state.remote == null) throw new Error('no remote peer')
    return withTimeout(id, (async () => {
      const stream = await node.dialProtocol(state.remote, id)
      const reading = readResponse(L, p, stream.source)
      // The sink half-closes once the request is written, as the spec asks.
      await stream.sink(L.requestEncode(lp, body))
      return { id, ...(await reading) }
    })())
  }

  /** Print a single-chunk answer as `event`, or the error. */
  function single (event, p, r) {
    if (r.error != null) {
      out('response_error', { protocol: r.id, code: r.error.code, message: r.error.message })
    } else if (r.chunks.length !== 1) {
      throw new Error(`${r.id}: ${r.chunks.length} chunks`)
    } else {
      out(event, { protocol: r.id, ...jsonFields(p.response(), r.chunks[0].value) })
    }
  }

  return {
    node,
    commands: {
      async set_status (args) {
        state.status = L.ssz.fulu.Status.fromJson(parseFields(args))
        out('status_set')
      },
      async set_metadata (args) {
        state.metadata = L.ssz.fulu.Metadata.fromJson(parseFields(args))
        out('metadata_set')
      },
      async serve_blocks ([slots]) {
        state.blocks = new Set(slots.split(',').filter((s) => s !== '').map(Number))
        out('blocks_set')
      },
      async dial ([addr]) {
        const connection = await withTimeout('dial', node.dial(multiaddr(addr)))
        state.remote = connection.remotePeer
        out('dialed', { peer: connection.remotePeer.toString() })
      },
      async request_status ([version, ...args]) {
        const name = `status${version}`
        const body = P[name].request.fromJson(parseFields(args))
        single('status', P[name], await request(name, body))
      },
      async request_ping ([value]) {
        single('ping', P.ping1, await request('ping1', BigInt(value)))
      },
      async request_metadata ([version]) {
        const name = `metadata${version}`
        single('metadata', P[name], await request(name, null))
      },
      async request_blocks ([start, count]) {
        const body = { startSlot: Number(start), count: Number(count), step: 1 }
        const r = await request('blocksByRange2', body)
        for (const c of r.chunks) {
          out('block', { slot: c.value.message.slot, fork: c.fork, context: hex(c.context), ssz: hex(c.ssz) })
        }
        out('blocks', { count: r.chunks.length, error_code: r.error?.code ?? '', error_message: r.error?.message ?? '' })
      },
      async request_goodbye ([reason]) {
        const p = P.goodbye1
        const stream = await withTimeout('goodbye', node.dialProtocol(state.remote, protocolId(p)))
        await stream.sink(L.requestEncode(lodestarProtocol(L, p), BigInt(reason)))
        // The remote closes without an answer.
        await withTimeout('goodbye EOF', collect(stream.source))
        out('goodbye_sent')
      }
    }
  }
}

// ---------- codec commands (both modes) ----------

const MESSAGE_DOMAIN_VALID_SNAPPY = Uint8Array.of(1, 0, 0, 0)
const MESSAGE_DOMAIN_INVALID_SNAPPY = Uint8Array.of(0, 0, 0, 0)

/**
 * The consensus spec's message id: SHA-256(domain ‖ [u64le(len(topic)) ‖ topic, from Altair]
 * ‖ payload)[:20], with the decompressed payload under the valid domain or the raw data under
 * the invalid one. The rule comes from the topic's digest, looked up in Lodestar's config.
 */
function gossipId (L, topic, data) {
  const digest = topic.split('/')[2]
  const fork = L.config.forkDigest2ForkBoundary(digest).fork
  let payload = null
  try {
    payload = L.snappyjs.uncompress(data)
  } catch {}
  const domain = payload == null ? MESSAGE_DOMAIN_INVALID_SNAPPY : MESSAGE_DOMAIN_VALID_SNAPPY
  const t = Buffer.from(topic, 'utf8')
  const len = Buffer.alloc(8)
  len.writeBigUInt64LE(BigInt(t.length))
  const parts = fork === 'phase0' ? [domain] : [domain, len, t]
  return { fork, payload, id: sha256(...parts, payload ?? data).subarray(0, 20) }
}

function codecCommands (L) {
  return {
    async digests ([network]) {
      const config = L.configs[network]
      if (config == null) throw new Error(`unknown network ${network}`)
      const entries = config.forkBoundariesAscendingEpochOrder
        .map((b) => `${b.fork}@${b.epoch}:${config.forkBoundary2ForkDigestHex(b)}`)
      out('digests', { network, entries })
    },
    async make_block ([slot]) {
      const b = makeBlock(L, Number(slot))
      out('block', { slot, fork: b.fork, context: hex(b.context), ssz: hex(b.bytes) })
    },
    async gossip_encode ([topic, ssz]) {
      const data = L.snappyjs.compress(unhex(ssz))
      const { fork, id } = gossipId(L, topic, data)
      out('gossip_encoded', { fork, data: hex(data), id: hex(id) })
    },
    async gossip_decode ([topic, data]) {
      const { fork, payload, id } = gossipId(L, topic, unhex(data))
      out('gossip_decoded', { fork, valid: payload == null ? 'no' : 'yes', ssz: payload == null ? '' : hex(payload), id: hex(id) })
    }
  }
}

async function main () {
  const [mode, muxer, generation] = process.argv.slice(2)
  const usage = 'usage: eth.mjs codec | node <yamux|mplex> <current|old>'
  if (!(mode === 'codec' || (mode === 'node' && ['yamux', 'mplex'].includes(muxer) && ['current', 'old'].includes(generation)))) {
    process.stderr.write(`${usage}\n`)
    process.exit(2)
  }
  const L = await loadLodestar()
  const commands = codecCommands(L)
  let node = null
  if (mode === 'node') {
    const n = await startNode(muxer, generation, L)
    node = n.node
    Object.assign(commands, n.commands)
  } else {
    out('started')
  }
  const lines = createInterface({ input: process.stdin, crlfDelay: Infinity })
  for await (const line of lines) {
    if (line.trim() === '') continue
    const [name, ...rest] = line.split('\t')
    const command = commands[name]
    if (command == null) fail('command', `unknown command ${JSON.stringify(name)}`)
    await command(rest).catch((err) => fail(name, err))
  }
  await node?.stop()
  process.exit(0)
}

process.on('unhandledRejection', (err) => fail('unhandled rejection', err))
main().catch((err) => fail('main', err))
