/**
 * Test helper: where the data of a nested netlink attribute starts, so a test can change one field of
 * encoded or captured bytes (an unknown protocol, forwarding method, tunnel type...).
 */

/**
 * Offset of the data of the attribute at `path` (attribute types, outermost first) in the attribute
 * list buf[from, buf.length). Throws when an attribute of the path is missing.
 */
export function attributeDataAt(buf: Buffer, path: readonly number[], from = 0): number {
  let start = from;
  let end = buf.length;
  for (const type of path) {
    let at = start;
    let found = -1;
    while (at + 4 <= end) {
      if ((buf.readUInt16LE(at + 2) & 0x3fff) === type) found = at;
      at += (buf.readUInt16LE(at) + 3) & ~3;
    }
    if (found < 0) throw new Error(`attribute ${path.join("/")} not found (at ${type})`);
    start = found + 4;
    end = found + buf.readUInt16LE(found);
  }
  return start;
}
