// Writes a small MaxMind DB (.mmdb) file for tests, so geo lookups run against a real binary
// database without downloading one. Minimal by design: 24-bit records, IPv4 networks (in an
// IPv4 tree, or in an IPv6 tree at ::/96 where readers look for IPv4), plain IPv6 networks.
// Format facts from the MaxMind DB spec 2.0: search tree, 16 zero bytes, data section, marker.

/** An unsigned integer that must be written with a given width (metadata fields need uint16). */
export class MmdbUint {
  readonly bits: 16 | 32 | 64;
  readonly value: bigint;
  constructor(bits: 16 | 32 | 64, value: number | bigint) {
    this.bits = bits;
    this.value = BigInt(value);
  }
}

export type MmdbValue = string | boolean | number | MmdbUint | readonly MmdbValue[] | { readonly [key: string]: MmdbValue };

export interface MmdbNetwork {
  /** "81.2.69.0" or "2a02:8000::" (no embedded IPv4 in IPv6 text). */
  readonly address: string;
  readonly prefixLength: number;
  readonly data: MmdbValue;
}

export interface MmdbOptions {
  readonly ipVersion: 4 | 6;
  readonly networks: readonly MmdbNetwork[];
  readonly databaseType?: string;
  readonly buildEpochSeconds?: number;
}

const recordBits = 24;
const dataSectionSeparatorBytes = 16;
const metadataMarker = Buffer.concat([Buffer.from([0xab, 0xcd, 0xef]), Buffer.from('MaxMind.com', 'ascii')]);

type Slot = { readonly node: TreeNode } | { readonly data: number } | null;
interface TreeNode {
  children: [Slot, Slot];
}

export function writeMmdb(options: MmdbOptions): Buffer {
  const root: TreeNode = { children: [null, null] };
  const dataValues: MmdbValue[] = [];
  // Broad networks first, so a narrower one splits the broad one's slot instead of being lost.
  const ordered = [...options.networks].sort((a, b) => treePrefix(a, options.ipVersion) - treePrefix(b, options.ipVersion));
  for (const network of ordered) {
    dataValues.push(network.data);
    insert(root, addressBits(network.address, options.ipVersion), treePrefix(network, options.ipVersion), dataValues.length - 1);
  }
  const nodes = numberNodes(root);
  const data = encodeDataSection(dataValues);
  const tree = Buffer.alloc(nodes.length * (recordBits / 4));
  nodes.forEach((node, index) => {
    node.children.forEach((slot, side) => {
      tree.writeUIntBE(recordValue(slot, nodes, data.offsets), index * 6 + side * 3, 3);
    });
  });
  const metadata = encode({
    node_count: new MmdbUint(32, nodes.length),
    record_size: new MmdbUint(16, recordBits),
    ip_version: new MmdbUint(16, options.ipVersion),
    database_type: options.databaseType ?? 'Tally-Test-Country',
    languages: ['en'],
    binary_format_major_version: new MmdbUint(16, 2),
    binary_format_minor_version: new MmdbUint(16, 0),
    build_epoch: new MmdbUint(64, options.buildEpochSeconds ?? 1_700_000_000),
    description: { en: 'Tally test database' },
  });
  return Buffer.concat([tree, Buffer.alloc(dataSectionSeparatorBytes), data.bytes, metadataMarker, metadata]);
}

function treePrefix(network: MmdbNetwork, ipVersion: 4 | 6): number {
  const isV4 = network.address.includes('.');
  return isV4 && ipVersion === 6 ? network.prefixLength + 96 : network.prefixLength;
}

function insert(root: TreeNode, bits: readonly number[], prefixLength: number, dataIndex: number): void {
  if (prefixLength < 1 || prefixLength > bits.length) throw new Error(`mmdb-writer: bad prefix length ${prefixLength}`);
  let node = root;
  for (let depth = 0; depth < prefixLength - 1; depth++) {
    const side = bits[depth] === 1 ? 1 : 0;
    const slot = node.children[side];
    if (slot !== null && 'node' in slot) {
      node = slot.node;
      continue;
    }
    // An empty slot, or a broader network's data that the narrower network now splits.
    const child: TreeNode = { children: [slot, slot] };
    node.children[side] = { node: child };
    node = child;
  }
  node.children[bits[prefixLength - 1] === 1 ? 1 : 0] = { data: dataIndex };
}

/** Breadth-first order: the root is node 0, as the format requires. */
function numberNodes(root: TreeNode): TreeNode[] {
  const nodes: TreeNode[] = [root];
  for (let index = 0; index < nodes.length; index++) {
    for (const slot of nodes[index]?.children ?? []) {
      if (slot !== null && 'node' in slot) nodes.push(slot.node);
    }
  }
  return nodes;
}

function recordValue(slot: Slot, nodes: readonly TreeNode[], dataOffsets: readonly number[]): number {
  if (slot === null) return nodes.length; // "no data"
  if ('node' in slot) return nodes.indexOf(slot.node);
  return nodes.length + dataSectionSeparatorBytes + (dataOffsets[slot.data] ?? 0);
}

function encodeDataSection(values: readonly MmdbValue[]): { bytes: Buffer; offsets: number[] } {
  const chunks: Buffer[] = [];
  const offsets: number[] = [];
  let offset = 0;
  for (const value of values) {
    const bytes = encode(value);
    offsets.push(offset);
    chunks.push(bytes);
    offset += bytes.length;
  }
  return { bytes: Buffer.concat(chunks), offsets };
}

function addressBits(address: string, ipVersion: 4 | 6): number[] {
  const bytes = address.includes('.') ? ipv4Bytes(address) : ipv6Bytes(address);
  if (bytes.length === 16 && ipVersion === 4) throw new Error('mmdb-writer: IPv6 network in an IPv4 tree');
  const padded = bytes.length === 4 && ipVersion === 6 ? [...new Array<number>(12).fill(0), ...bytes] : bytes;
  return padded.flatMap((byte) => Array.from({ length: 8 }, (_, bit) => (byte >> (7 - bit)) & 1));
}

function ipv4Bytes(address: string): number[] {
  const parts = address.split('.').map(Number);
  if (parts.length !== 4 || parts.some((part) => !Number.isInteger(part) || part < 0 || part > 255)) {
    throw new Error(`mmdb-writer: bad IPv4 address ${address}`);
  }
  return parts;
}

function ipv6Bytes(address: string): number[] {
  const [head = '', tail] = address.split('::');
  const headGroups = head === '' ? [] : head.split(':');
  const tailGroups = tail === undefined || tail === '' ? [] : tail.split(':');
  const zeros = new Array<string>(8 - headGroups.length - tailGroups.length).fill('0');
  const groups = tail === undefined ? headGroups : [...headGroups, ...zeros, ...tailGroups];
  if (groups.length !== 8) throw new Error(`mmdb-writer: bad IPv6 address ${address}`);
  return groups.flatMap((group) => {
    const value = Number.parseInt(group, 16);
    return [value >> 8, value & 0xff];
  });
}

// Data types of the format's data section.
const typeString = 2;
const typeDouble = 3;
const typeUint16 = 5;
const typeUint32 = 6;
const typeMap = 7;
const typeUint64 = 9;
const typeArray = 11;
const typeBoolean = 14;

function encode(value: MmdbValue): Buffer {
  if (typeof value === 'string') {
    const bytes = Buffer.from(value, 'utf8');
    return Buffer.concat([control(typeString, bytes.length), bytes]);
  }
  if (typeof value === 'boolean') return control(typeBoolean, value ? 1 : 0);
  if (typeof value === 'number') {
    if (Number.isInteger(value) && value >= 0 && value < 2 ** 32) return encode(new MmdbUint(32, value));
    const bytes = Buffer.alloc(8);
    bytes.writeDoubleBE(value);
    return Buffer.concat([control(typeDouble, 8), bytes]);
  }
  if (value instanceof MmdbUint) return encodeUint(value);
  if (Array.isArray(value)) return Buffer.concat([control(typeArray, value.length), ...value.map(encode)]);
  const entries = Object.entries(value as { readonly [key: string]: MmdbValue });
  return Buffer.concat([control(typeMap, entries.length), ...entries.flatMap(([key, item]) => [encode(key), encode(item)])]);
}

function encodeUint(value: MmdbUint): Buffer {
  const type = value.bits === 16 ? typeUint16 : value.bits === 32 ? typeUint32 : typeUint64;
  const bytes: number[] = [];
  for (let rest = value.value; rest > 0n; rest >>= 8n) bytes.unshift(Number(rest & 0xffn));
  return Buffer.concat([control(type, bytes.length), Buffer.from(bytes)]);
}

/** Control byte(s): type in the top 3 bits (or 0 plus an extended-type byte), then the size. */
function control(type: number, size: number): Buffer {
  const typeBits = type <= 7 ? type << 5 : 0;
  const extended = type <= 7 ? [] : [type - 7];
  if (size < 29) return Buffer.from([typeBits | size, ...extended]);
  if (size < 29 + 256) return Buffer.from([typeBits | 29, ...extended, size - 29]);
  if (size < 285 + 65_536) return Buffer.from([typeBits | 30, ...extended, (size - 285) >> 8, (size - 285) & 0xff]);
  const rest = size - 65_821;
  return Buffer.from([typeBits | 31, ...extended, rest >> 16, (rest >> 8) & 0xff, rest & 0xff]);
}
