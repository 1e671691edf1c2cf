/**
 * The shard of a resource id: the last 32 bits of its UUID (random in a v7 UUID) modulo the shard
 * count. PostgreSQL computes the same with the inventory's `SHARD_SQL`.
 */
export function shardOf(id: string, shards: number): number {
  const hex = id.replaceAll("-", "").slice(-8);
  const value = Number.parseInt(hex, 16);
  if (Number.isNaN(value)) {
    // Not a UUID: FNV-1a over the string.
    let hash = 0x811c9dc5;
    for (let i = 0; i < id.length; i++) hash = Math.imul(hash ^ id.charCodeAt(i), 0x01000193) >>> 0;
    return hash % shards;
  }
  return value % shards;
}

/** The resource id of a key `<kind>:<id>`. */
export function keyId(key: string): string {
  return key.slice(key.indexOf(":") + 1);
}
