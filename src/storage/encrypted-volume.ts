// One encrypted volume with its key kept wrapped: the data key is made on first open, wrapped by
// a key-encryption key and stored (catalog row or key file) BEFORE the volume exists, unwrapped
// only to open the volume and zeroed right after. The backend a volume was made with is recorded
// and always used to open it again.
import { readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { newDataKey, parseWrappedKey, wipe, type KekProvider, type WrappedKey } from '../crypto/index.js';
import { VolumeBusyError, VolumeStateError, volumeBackend, volumeDataDir, type BackendName, type VolumeBackend, type VolumeSpec } from './volumes/index.js';

export interface StoredVolume {
  readonly backend: BackendName;
  readonly sizeBytes: number;
  readonly wrappedKey: WrappedKey;
}

/** Where a volume's record (backend, size, wrapped key) is kept. */
export interface VolumeRecords {
  get(): Promise<StoredVolume | null>;
  put(v: StoredVolume): Promise<void>;
  delete(): Promise<void>;
}

export interface VolumeKeying {
  readonly records: VolumeRecords;
  /** The KEK that wraps this volume's key now. */
  kek(): Promise<KekProvider>;
  /** Binds the wrapped key to this volume (a blob moved to another volume does not unwrap). */
  readonly aad: Buffer;
}

export class EncryptedVolume {
  constructor(
    readonly spec: VolumeSpec,
    private readonly keying: VolumeKeying,
    /** The backend for a new volume (chosen once per platform). */
    private readonly preferred: () => Promise<VolumeBackend>,
  ) {}

  get dataDir(): string {
    return volumeDataDir(this.spec);
  }

  /** Opens the volume; with `create`, makes it (and its key) when it does not exist yet. */
  async open(create: boolean): Promise<void> {
    let record = await this.keying.records.get();
    if (!record) {
      if (!create) throw new VolumeStateError(`Encrypted volume '${this.spec.id}' has no key record: it was never created.`);
      const backend = await this.preferred();
      const key = newDataKey(backend.keyBytes as 32 | 64);
      try {
        const wrappedKey = await (await this.keying.kek()).wrap(key, this.keying.aad);
        record = { backend: backend.name, sizeBytes: this.spec.sizeBytes, wrappedKey };
        await this.keying.records.put(record);
      } finally {
        wipe(key);
      }
    }
    const backend = volumeBackend(record.backend);
    const spec = { ...this.spec, sizeBytes: record.sizeBytes };
    const key = await (await this.keying.kek()).unwrap(record.wrappedKey, this.keying.aad);
    try {
      try {
        await backend.open(spec, key);
      } catch (err) {
        // The record was written before the volume: a first open that died half-way.
        if (!(err instanceof VolumeStateError) || !create) throw err;
        await backend.create(spec, key);
      }
    } finally {
      wipe(key);
    }
  }

  async isOpen(): Promise<boolean> {
    const record = await this.keying.records.get();
    return record ? volumeBackend(record.backend).isOpen({ ...this.spec, sizeBytes: record.sizeBytes }) : false;
  }

  /** Removes the key from memory and the kernel, unmounts. Waits up to `waitMs` for files
   * still being closed by processes that just exited. */
  async close(waitMs = 10_000): Promise<void> {
    const record = await this.keying.records.get();
    if (!record) return;
    const backend = volumeBackend(record.backend);
    const spec = { ...this.spec, sizeBytes: record.sizeBytes };
    const until = Date.now() + waitMs;
    for (;;) {
      try {
        await backend.close(spec);
        return;
      } catch (err) {
        if (!(err instanceof VolumeBusyError) || Date.now() > until) throw err;
        await new Promise((r) => setTimeout(r, 200));
      }
    }
  }

  /** Re-wraps the volume key under another KEK; the data is not touched. */
  async rewrap(from: KekProvider, to: KekProvider): Promise<WrappedKey | null> {
    const record = await this.keying.records.get();
    if (!record) return null;
    const key = await from.unwrap(record.wrappedKey, this.keying.aad);
    try {
      return await to.wrap(key, this.keying.aad);
    } finally {
      wipe(key);
    }
  }

  /** Closes the volume and deletes it with its record. */
  async destroy(): Promise<void> {
    const record = await this.keying.records.get();
    if (record) await volumeBackend(record.backend).destroy({ ...this.spec, sizeBytes: record.sizeBytes });
    await this.keying.records.delete();
  }
}

/** A volume record in a 0600 file (the platform's own volumes: catalog, audit store). */
export function fileVolumeRecords(file: string): VolumeRecords {
  return {
    async get() {
      let text: string;
      try {
        text = readFileSync(file, 'utf8');
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code === 'ENOENT') return null;
        throw err;
      }
      const v = JSON.parse(text) as { backend: BackendName; sizeBytes: number; wrappedKey: unknown };
      return { backend: v.backend, sizeBytes: v.sizeBytes, wrappedKey: parseWrappedKey(v.wrappedKey) };
    },
    async put(v) {
      writeFileSync(`${file}.tmp`, JSON.stringify(v, null, 2) + '\n', { mode: 0o600 });
      renameSync(`${file}.tmp`, file);
    },
    async delete() {
      rmSync(file, { force: true });
    },
  };
}
