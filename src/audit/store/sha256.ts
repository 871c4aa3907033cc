// SHA-256 of a string or bytes: crypto.hash (one shot, Node >= 20.12) when present, else createHash.
import * as crypto from 'node:crypto';

type OneShot = (algorithm: string, data: crypto.BinaryLike, encoding: 'buffer') => Buffer;
const oneShot = (crypto as unknown as { hash?: OneShot }).hash;

export const sha256: (data: string | Uint8Array) => Buffer =
  typeof oneShot === 'function' ? (data) => oneShot('sha256', data, 'buffer') : (data) => crypto.createHash('sha256').update(data).digest();
