/**
 * Prefix arithmetic for the buddy allocator of IP pools, on BigInt so IPv4 and IPv6 share it.
 * The database keeps the invariants (no overlap, inside the pool); this only computes
 * candidates.
 */

/** An IP prefix as numbers: address family, network address, prefix length. */
export interface Prefix {
  readonly family: 4 | 6;
  readonly network: bigint;
  readonly length: number;
}

const BITS = { 4: 32, 6: 128 } as const;

/** Thrown when a string is not a valid CIDR prefix with no host bits set. */
export class PrefixError extends Error {
  override readonly name = "PrefixError";
  readonly code = "DV_PREFIX";
}

function parseIpv4(text: string): bigint | undefined {
  const parts = text.split(".");
  if (parts.length !== 4) return undefined;
  let value = 0n;
  for (const part of parts) {
    if (!/^\d{1,3}$/.test(part) || Number(part) > 255) return undefined;
    value = (value << 8n) | BigInt(part);
  }
  return value;
}

function parseIpv6(text: string): bigint | undefined {
  const halves = text.split("::");
  if (halves.length > 2) return undefined;
  const head = halves[0] ? halves[0].split(":") : [];
  const tail = halves.length === 2 && halves[1] ? halves[1].split(":") : [];
  const missing = 8 - head.length - tail.length;
  if ((halves.length === 1 && missing !== 0) || missing < 0) return undefined;
  const groups = [...head, ...Array<string>(halves.length === 2 ? missing : 0).fill("0"), ...tail];
  let value = 0n;
  for (const group of groups) {
    if (!/^[0-9a-fA-F]{1,4}$/.test(group)) return undefined;
    value = (value << 16n) | BigInt(Number.parseInt(group, 16));
  }
  return value;
}

/**
 * Parses `10.0.0.0/24` or `2001:db8::/48`.
 *
 * @throws {PrefixError} when it is not a prefix, or host bits are set (`10.0.0.1/24`).
 */
export function parsePrefix(text: string): Prefix {
  const [address = "", lengthText, extra] = text.trim().split("/");
  if (lengthText === undefined || extra !== undefined || !/^\d{1,3}$/.test(lengthText)) {
    throw new PrefixError(`"${text}" is not a CIDR prefix (address/length)`);
  }
  const family = address.includes(":") ? 6 : 4;
  const network = family === 4 ? parseIpv4(address) : parseIpv6(address);
  const length = Number(lengthText);
  if (network === undefined) throw new PrefixError(`"${text}" has an invalid IPv${family} address`);
  if (length > BITS[family])
    throw new PrefixError(`"${text}": the length must be at most ${BITS[family]}`);
  const hostBits = BigInt(BITS[family] - length);
  if (network & ((1n << hostBits) - 1n)) {
    throw new PrefixError(
      `"${text}" has host bits set; did you mean ${formatPrefix({ family, network: (network >> hostBits) << hostBits, length })}?`,
    );
  }
  return { family, network, length };
}

/** Formats a prefix the way PostgreSQL's `cidr` type prints it. */
export function formatPrefix(prefix: Prefix): string {
  if (prefix.family === 4) {
    const octets = [24n, 16n, 8n, 0n].map((shift) => String((prefix.network >> shift) & 255n));
    return `${octets.join(".")}/${prefix.length}`;
  }
  const groups: string[] = [];
  for (let shift = 112n; shift >= 0n; shift -= 16n)
    groups.push(((prefix.network >> shift) & 0xffffn).toString(16));
  // Compress the longest run of zero groups (of two or more), as RFC 5952 and PostgreSQL do.
  let best = { start: -1, length: 0 };
  for (let i = 0; i < 8;) {
    if (groups[i] !== "0") {
      i++;
      continue;
    }
    let j = i;
    while (j < 8 && groups[j] === "0") j++;
    if (j - i > best.length && j - i >= 2) best = { start: i, length: j - i };
    i = j;
  }
  const text =
    best.start < 0
      ? groups.join(":")
      : `${groups.slice(0, best.start).join(":")}::${groups.slice(best.start + best.length).join(":")}`;
  return `${text}/${prefix.length}`;
}

/** Total bits of the family's addresses. */
export function familyBits(family: 4 | 6): number {
  return BITS[family];
}

/** The two halves of a prefix (one bit longer). */
export function children(prefix: Prefix): [Prefix, Prefix] {
  const length = prefix.length + 1;
  if (length > BITS[prefix.family])
    throw new PrefixError(`${formatPrefix(prefix)} cannot be split`);
  const bit = 1n << BigInt(BITS[prefix.family] - length);
  return [
    { family: prefix.family, network: prefix.network, length },
    { family: prefix.family, network: prefix.network | bit, length },
  ];
}

/** The other half of the prefix's parent. */
export function buddy(prefix: Prefix): Prefix {
  const bit = 1n << BigInt(BITS[prefix.family] - prefix.length);
  return { ...prefix, network: prefix.network ^ bit };
}

/** The prefix one bit shorter that contains this one. */
export function parent(prefix: Prefix): Prefix {
  const bit = 1n << BigInt(BITS[prefix.family] - prefix.length);
  return { family: prefix.family, network: prefix.network & ~bit, length: prefix.length - 1 };
}

/**
 * Splits `block` down to `length`: returns the first sub-prefix of that length (to allocate) and
 * the free remainders created on the way (one per level, largest first).
 */
export function carve(block: Prefix, length: number): { allocated: Prefix; remainders: Prefix[] } {
  if (length < block.length || length > BITS[block.family]) {
    throw new PrefixError(`cannot carve a /${length} out of ${formatPrefix(block)}`);
  }
  const remainders: Prefix[] = [];
  let current = block;
  while (current.length < length) {
    const [low, high] = children(current);
    remainders.push(high);
    current = low;
  }
  return { allocated: current, remainders };
}

/** Number of addresses in a prefix. */
export function size(prefix: Prefix): bigint {
  return 1n << BigInt(BITS[prefix.family] - prefix.length);
}

/** True when the two prefixes share an address. */
export function overlaps(a: Prefix, b: Prefix): boolean {
  if (a.family !== b.family) return false;
  const aEnd = a.network + size(a);
  const bEnd = b.network + size(b);
  return a.network < bEnd && b.network < aEnd;
}
