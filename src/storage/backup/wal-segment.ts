// One archived WAL file as stored: a small clear header naming its key epoch, then the AEAD
// stream of its bytes.
//   "PGWWAL01" | uint16 BE header length | header JSON {"v":1,"epoch":…,"name":…} | ciphertext
// The header is not secret and not trusted: the stream's AAD repeats server, epoch and name, so
// an edited header, a renamed file or a segment of another server fails authentication.
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { decryptStream, encryptStream, walStreamAad } from './cipher.js';
import { BackupTamperedError } from './errors.js';
import type { WalKeyring } from './wal-keys.js';

const MAGIC = Buffer.from('PGWWAL01');

export const walObjectKey = (serverId: string, walFile: string) => `${serverId}/wal/${walFile}.pgwenc`;

/** Encrypts a WAL file held in memory into its stored form. */
export async function sealWalFile(keyring: WalKeyring, serverId: string, name: string, plain: Buffer): Promise<Buffer> {
  const { epoch, key } = await keyring.forWriting();
  const header = Buffer.from(JSON.stringify({ v: 1, epoch, name }));
  const len = Buffer.alloc(2);
  len.writeUInt16BE(header.length);
  const parts: Buffer[] = [MAGIC, len, header];
  await pipeline(Readable.from([plain]), encryptStream(key, walStreamAad(serverId, epoch, name)), async (source: AsyncIterable<Buffer>) => {
    for await (const c of source) parts.push(c);
  });
  return Buffer.concat(parts);
}

/** Decrypts a stored WAL file; throws BackupTamperedError unless every byte authenticates. */
export async function openWalFile(keyring: WalKeyring, serverId: string, name: string, stored: Buffer): Promise<Buffer> {
  const object = walObjectKey(serverId, name);
  if (stored.length < MAGIC.length + 2 || !stored.subarray(0, MAGIC.length).equals(MAGIC)) {
    throw new BackupTamperedError(object, 'bad WAL file header');
  }
  const hlen = stored.readUInt16BE(MAGIC.length);
  const hstart = MAGIC.length + 2;
  if (hlen > 1024 || stored.length < hstart + hlen) throw new BackupTamperedError(object, 'bad WAL file header');
  let header: { v?: unknown; epoch?: unknown; name?: unknown };
  try {
    header = JSON.parse(stored.subarray(hstart, hstart + hlen).toString('utf8')) as typeof header;
  } catch {
    throw new BackupTamperedError(object, 'bad WAL file header');
  }
  if (header.v !== 1 || typeof header.epoch !== 'string' || header.name !== name) {
    throw new BackupTamperedError(object, 'WAL file header does not match its name');
  }
  let key: Buffer;
  try {
    key = await keyring.forReading(header.epoch);
  } catch (err) {
    throw new BackupTamperedError(object, `its key cannot be opened: ${(err as Error).message}`, { cause: err });
  }
  const parts: Buffer[] = [];
  try {
    await pipeline(
      Readable.from([stored.subarray(hstart + hlen)]),
      decryptStream(key, walStreamAad(serverId, header.epoch, name)),
      async (source: AsyncIterable<Buffer>) => {
        for await (const c of source) parts.push(c);
      },
    );
  } catch (err) {
    throw new BackupTamperedError(object, (err as Error).message, { cause: err });
  }
  return Buffer.concat(parts);
}
