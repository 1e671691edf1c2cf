import { isIPv4, isIPv6 } from "node:net";

/**
 * CIDR prefixes as the CRDs' zod schemas check them: the same rules as the CEL `isCIDR()` and
 * `cidr().masked()` the API server runs (Go's `netip.ParsePrefix`), so a directory of YAML is
 * refused for what `kubectl apply` refuses (and, stricter than CEL, an IPv6 zone or IPv4 tail the
 * inventory cannot store). Kept apart from the inventory's prefix arithmetic so
 * the API schemas depend on nothing but zod and Node.
 */

/** A parsed prefix: address family, network address as a number, length. */
interface ParsedPrefix {
  readonly bits: 32 | 128;
  readonly network: bigint;
  readonly length: number;
}

function ipv4Value(address: string): bigint {
  return address.split(".").reduce((v, octet) => (v << 8n) | BigInt(octet), 0n);
}

function ipv6Value(address: string): bigint {
  const [head = "", tail] = address.split("::");
  const groups = (part: string | undefined) => (part ? part.split(":") : []);
  const missing = 8 - groups(head).length - groups(tail).length;
  const all = [...groups(head), ...Array<string>(tail === undefined ? 0 : missing).fill("0")];
  all.push(...groups(tail));
  return all.reduce((v, g) => (v << 16n) | BigInt(Number.parseInt(g, 16)), 0n);
}

/**
 * Parses `10.0.0.0/16` or `2001:db8::/48`; a string that is not a prefix (a bad address, a
 * length past the family's bits, an embedded IPv4 tail or a zone) is a reason, not a prefix.
 */
export function parseCidr(text: string): ParsedPrefix | string {
  const slash = text.indexOf("/");
  const address = text.slice(0, slash);
  const lengthText = text.slice(slash + 1);
  if (slash < 0 || !/^\d{1,3}$/.test(lengthText))
    return "must be a CIDR prefix such as 10.0.0.0/16 (an address, '/', a length)";
  const length = Number(lengthText);
  if (isIPv4(address)) {
    if (length > 32) return "the length of an IPv4 prefix must be at most 32";
    return { bits: 32, network: ipv4Value(address), length };
  }
  // Neither a zone (`%eth0`) nor an embedded IPv4 tail: the inventory stores plain prefixes.
  if (isIPv6(address) && !/[.%]/.test(address)) {
    if (length > 128) return "the length of an IPv6 prefix must be at most 128";
    return { bits: 128, network: ipv6Value(address), length };
  }
  return "must be a CIDR prefix such as 10.0.0.0/16: the address is not a valid IPv4 or IPv6 address";
}

const hostMask = (p: ParsedPrefix): bigint => (1n << BigInt(p.bits - p.length)) - 1n;

/** Why `text` is not a usable prefix (not one, or host bits set), or undefined when it is. */
export function cidrProblem(text: string): string | undefined {
  const p = parseCidr(text);
  if (typeof p === "string") return p;
  if ((p.network & hostMask(p)) !== 0n) return "must not have host bits set (e.g. 10.0.0.0/16)";
  return undefined;
}

/** Whether two valid prefixes share an address (one contains the other). */
export function cidrsOverlap(a: string, b: string): boolean {
  const p = parseCidr(a);
  const q = parseCidr(b);
  if (typeof p === "string" || typeof q === "string" || p.bits !== q.bits) return false;
  const shorter = p.length <= q.length ? p : q;
  return (p.network & ~hostMask(shorter)) === (q.network & ~hostMask(shorter));
}
