// SHA-256 of a string or bytes: crypto.hash (one shot, Node >= 20.12) when present, else createHash.
import * as crypto from 'node:crypto';

type OneShot = (algorithm: string, data: crypto.BinaryLike, encoding: 'buffer' | 'hex' | 'latin1') => Buffer | string;
const oneShot = (crypto as unknown as { hash?: OneShot }).hash;

export const sha256: (data: string | Uint8Array) => Buffer =
  typeof oneShot === 'function' ? (data) => oneShot('sha256', data, 'buffer') as Buffer : (data) => crypto.createHash('sha256').update(data).digest();

/** Lowercase hex SHA-256. A hex result costs crypto.hash about half of what a Buffer result does. */
export const sha256Hex: (data: string | Uint8Array) => string =
  typeof oneShot === 'function' ? (data) => oneShot('sha256', data, 'hex') as string : (data) => crypto.createHash('sha256').update(data).digest('hex');

/** SHA-256 as a latin1 string (one character per byte): for hashes of hashes, the cheapest form crypto.hash returns. */
export const sha256Latin1: (data: Uint8Array) => string =
  typeof oneShot === 'function'
    ? (data) => oneShot('sha256', data, 'latin1') as string
    : (data) => crypto.createHash('sha256').update(data).digest().toString('latin1');
