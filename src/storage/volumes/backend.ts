// What one encrypted volume is and what every backend does with it (fscrypt.ts, gocryptfs.ts).
// Apart from volume.ts, which picks a backend, so the backends never import their chooser.

export interface VolumeSpec {
  /** e.g. server-12: letters, digits, '-', '_' (names the image / ciphertext dir). */
  readonly id: string;
  /** Where the backend keeps its image / ciphertext dir; made root-only 0700. */
  readonly stateDir: string;
  /** Where the volume is mounted; every ancestor must be searchable by `owner`. */
  readonly mountPoint: string;
  readonly sizeBytes: number;
  /** Owner of `${mountPoint}/data` (the OS user that runs PostgreSQL). */
  readonly owner: { uid: number; gid: number };
}

export type ProbeResult = { ok: true } | { ok: false; reason: string; howToFix: string };

export type BackendName = 'fscrypt' | 'gocryptfs';

export interface VolumeBackend {
  readonly name: BackendName;
  /** Raw key length this backend wants (fscrypt v2 AES-256-XTS: 64; gocryptfs: 32). */
  readonly keyBytes: number;
  /** Can this host run the backend? Cached per process; runs a tiny real volume once. */
  probe(): Promise<ProbeResult>;
  /** Makes the volume and opens it; `${mountPoint}/data` is the encrypted directory, empty,
   * owned by spec.owner, mode 0700. Fails if the volume already exists. */
  create(spec: VolumeSpec, key: Buffer): Promise<void>;
  /** Mounts / adds the key. Idempotent when already open with that key; a wrong key fails with
   * WrongVolumeKeyError and leaves the volume as it was. */
  open(spec: VolumeSpec, key: Buffer): Promise<void>;
  /** Removes the key / unmounts. Only after the server stopped: files still open make it fail
   * with VolumeBusyError (see each backend for what stays readable). Idempotent. */
  close(spec: VolumeSpec): Promise<void>;
  /** close() + delete the image / ciphertext dir (and stateDir / mountPoint when left empty). */
  destroy(spec: VolumeSpec): Promise<void>;
  isOpen(spec: VolumeSpec): Promise<boolean>;
}

/** The encrypted directory of a volume (where the server's data directory goes). */
export function volumeDataDir(spec: VolumeSpec): string {
  return `${spec.mountPoint.replace(/\/+$/, '')}/data`;
}
