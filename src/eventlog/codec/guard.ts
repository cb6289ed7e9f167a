import type avro from 'avsc';
import { BadInputError } from '../../errors/index.ts';

/**
 * A bounds check of Avro bytes against a schema, run before avsc decodes them. avsc loops over an array or
 * map block's declared item count before it notices the buffer has ended, so an 18-byte record claiming
 * 2^40 map entries would block the event loop for hours. Every item of our schemas takes at least one byte,
 * so a block count larger than the bytes left is a lie; so is a string or bytes length past the end.
 * The walk only skips over values (no allocation), in time linear in the buffer.
 */
export function checkAvroBounds(type: avro.Type, bytes: Buffer): void {
  const cursor = { pos: 0 };
  skip(type, bytes, cursor);
  if (cursor.pos > bytes.length) bad('truncated buffer');
}

interface Cursor {
  pos: number;
}

function skip(type: avro.Type, buf: Buffer, c: Cursor): void {
  switch (baseName(type)) {
    case 'null':
      return;
    case 'boolean':
      c.pos += 1;
      return;
    case 'int': {
      // avsc reads an int as wide as its varint says; one past 32 bits would decode to a value the schema
      // (and any re-encoding) refuses.
      const value = readVarint(buf, c);
      if (value < -0x80000000 || value > 0x7fffffff) bad(`int ${value} is out of range`);
      return;
    }
    case 'long':
    case 'enum':
      readVarint(buf, c);
      return;
    case 'float':
      c.pos += 4;
      return;
    case 'double':
      c.pos += 8;
      return;
    case 'string':
    case 'bytes':
      skipLength(buf, c);
      return;
    case 'fixed':
      c.pos += (type as unknown as { size: number }).size;
      return;
    case 'record':
      for (const field of (type as avro.types.RecordType).fields) skip(field.type, buf, c);
      return;
    case 'array':
      skipBlocks(buf, c, () => skip((type as avro.types.ArrayType).itemsType, buf, c));
      return;
    case 'map':
      skipBlocks(buf, c, () => {
        skipLength(buf, c);
        skip((type as avro.types.MapType).valuesType, buf, c);
      });
      return;
    case 'union': {
      const branches = (type as avro.types.UnwrappedUnionType).types;
      const index = readVarint(buf, c);
      const branch = branches[index];
      if (!branch) bad(`union branch ${index} does not exist`);
      skip(branch, buf, c);
      return;
    }
    default:
      // Unknown kinds (none in our schemas) are left to avsc.
      return;
  }
}

function baseName(type: avro.Type): string {
  const name = type.typeName;
  if (name.startsWith('union')) return 'union';
  if (name.startsWith('logical')) return baseName((type as unknown as { underlyingType: avro.Type }).underlyingType);
  return name;
}

function skipBlocks(buf: Buffer, c: Cursor, skipItem: () => void): void {
  for (;;) {
    let count = readVarint(buf, c);
    if (count === 0) return;
    if (count < 0) {
      count = -count;
      readVarint(buf, c); // the block's size in bytes, which a reader may use to skip it
    }
    if (count > buf.length - c.pos) bad(`a block claims ${count} items with ${Math.max(0, buf.length - c.pos)} bytes left`);
    for (let i = 0; i < count; i++) skipItem();
  }
}

function skipLength(buf: Buffer, c: Cursor): void {
  const length = readVarint(buf, c);
  if (length < 0 || length > buf.length - c.pos) bad(`a length of ${length} runs past the end`);
  c.pos += length;
}

/** Zig-zag varint as Avro writes int and long; bounded to 10 bytes. */
function readVarint(buf: Buffer, c: Cursor): number {
  let result = 0;
  let factor = 1;
  for (let i = 0; i < 10; i++) {
    if (c.pos >= buf.length) bad('truncated buffer');
    const byte = buf[c.pos++]!;
    result += (byte & 0x7f) * factor;
    if ((byte & 0x80) === 0) return result % 2 === 0 ? result / 2 : -(result + 1) / 2;
    factor *= 128;
  }
  return bad('varint longer than 10 bytes');
}

function bad(why: string): never {
  throw new BadInputError('UNDECODABLE', why);
}
