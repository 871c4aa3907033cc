// WAL data keys. One random data key per server WAL "epoch", wrapped by the server's KEK and
// stored at <serverId>/wal/keys/<epoch>.json. An archive agent opens a new epoch when it starts
// and then every `maxEpochAgeMs` (default a day) or `maxSegmentsPerEpoch` (default 4096 segments,
// 64 GiB of 16 MiB segments), so a key protects a bounded amount of data and the KEK is asked to
// wrap once per epoch, not once per segment. Every segment names its epoch in its header; a
// restore unwraps each epoch's key once and keeps it in memory until close() zeroes it.
import { randomBytes } from 'node:crypto';
import type { BackupRepository } from './repository.js';
import { defaultKeyAad, loadWrappedKey, newDataKey, storeWrappedKey, type KekProvider, type KeyAadFor, type StoredWrappedKey } from './cipher.js';
import { BackupError, RepositoryObjectMissingError } from './errors.js';
import { readAll } from './stream-util.js';

export interface WalKeyFile {
  readonly formatVersion: 1;
  readonly serverId: string;
  readonly epoch: string;
  readonly created: string;
  readonly wrappedKey: StoredWrappedKey;
}

export interface WalKeyringOptions {
  readonly repo: BackupRepository;
  readonly serverId: string;
  readonly kek: KekProvider;
  readonly aadFor?: KeyAadFor;
  readonly maxEpochAgeMs?: number;
  readonly maxSegmentsPerEpoch?: number;
  readonly now?: () => Date;
}

const EPOCH = /^\d{8}T\d{6}Z-[0-9a-f]{8}$/;

export function walKeyKey(serverId: string, epoch: string): string {
  return `${serverId}/wal/keys/${epoch}.json`;
}

export function newEpochId(now: Date): string {
  return `${now
    .toISOString()
    .replace(/[-:]/g, '')
    .replace(/\.\d+Z$/, 'Z')}-${randomBytes(4).toString('hex')}`;
}

export class WalKeyring {
  private readonly cache = new Map<string, Buffer>();
  private current: { epoch: string; key: Buffer; opened: number; segments: number } | null = null;
  private opening: Promise<void> | null = null;
  /** How many times the KEK was asked to unwrap (for tests and metrics). */
  unwraps = 0;

  constructor(private readonly o: WalKeyringOptions) {}

  private aad(epoch: string): Buffer {
    return (this.o.aadFor ?? defaultKeyAad)(this.o.serverId, 'wal', epoch);
  }

  /** The key to encrypt the next segment with (opens a new epoch when due). */
  async forWriting(): Promise<{ epoch: string; key: Buffer }> {
    const now = (this.o.now ?? (() => new Date()))();
    const c = this.current;
    const maxAge = this.o.maxEpochAgeMs ?? 24 * 3600_000;
    const maxSegs = this.o.maxSegmentsPerEpoch ?? 4096;
    if (!c || now.getTime() - c.opened >= maxAge || c.segments >= maxSegs) {
      this.opening ??= this.openEpoch(now).finally(() => (this.opening = null));
      await this.opening;
    }
    const cur = this.current!;
    cur.segments++;
    return { epoch: cur.epoch, key: cur.key };
  }

  private async openEpoch(now: Date): Promise<void> {
    const epoch = newEpochId(now);
    const key = newDataKey();
    const wrapped = await this.o.kek.wrap(key, this.aad(epoch));
    const file: WalKeyFile = { formatVersion: 1, serverId: this.o.serverId, epoch, created: now.toISOString(), wrappedKey: storeWrappedKey(wrapped) };
    await this.o.repo.put(walKeyKey(this.o.serverId, epoch), Buffer.from(`${JSON.stringify(file, null, 2)}\n`));
    this.cache.set(epoch, key);
    this.current = { epoch, key, opened: now.getTime(), segments: 0 };
  }

  /** The key of an epoch, for reading (unwrapped once, then cached). */
  async forReading(epoch: string): Promise<Buffer> {
    if (!EPOCH.test(epoch)) throw new BackupError(`Invalid WAL key epoch '${epoch}' in a WAL segment header.`);
    const hit = this.cache.get(epoch);
    if (hit) return hit;
    let text: string;
    try {
      text = (await readAll(await this.o.repo.get(walKeyKey(this.o.serverId, epoch)))).toString('utf8');
    } catch (err) {
      if (err instanceof RepositoryObjectMissingError) {
        throw new BackupError(`The WAL key of epoch '${epoch}' of server '${this.o.serverId}' is missing from the backup repository.`);
      }
      throw err;
    }
    const file = JSON.parse(text) as WalKeyFile;
    if (file.serverId !== this.o.serverId || file.epoch !== epoch) {
      throw new BackupError(`The WAL key file of epoch '${epoch}' belongs to another server or epoch.`);
    }
    this.unwraps++;
    const key = await this.o.kek.unwrap(loadWrappedKey(file.wrappedKey), this.aad(epoch));
    this.cache.set(epoch, key);
    return key;
  }

  /** Forgets (and zeroes) every key held in memory. */
  close(): void {
    for (const k of this.cache.values()) k.fill(0);
    this.cache.clear();
    this.current = null;
  }
}
