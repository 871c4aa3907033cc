// Errors of the encrypted volumes: each names the volume, says what failed and what to do.
export class VolumeError extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'VolumeError';
  }
}

/** No encryption backend works on this host: storage encryption cannot be turned off, so
 * creating a server fails with this error, which says how to install one. */
export class NoEncryptionBackendError extends VolumeError {
  constructor(readonly reasons: readonly { backend: string; reason: string; howToFix: string }[]) {
    super(
      'No storage encryption backend works on this host, and storage encryption cannot be turned off. ' +
        reasons.map((r) => `${r.backend}: ${r.reason} To fix: ${r.howToFix}`).join(' '),
    );
    this.name = 'NoEncryptionBackendError';
  }
}

/** The key given to open() is not the volume's key (nothing was changed on the volume). */
export class WrongVolumeKeyError extends VolumeError {
  constructor(
    readonly volumeId: string,
    backend: string,
  ) {
    super(`The key given for encrypted volume '${volumeId}' (${backend}) is not its key: nothing was unlocked and the volume was left as it was.`);
    this.name = 'WrongVolumeKeyError';
  }
}

/** close() found files still open on the volume (the server has not stopped). */
export class VolumeBusyError extends VolumeError {
  constructor(
    readonly volumeId: string,
    detail: string,
  ) {
    super(`Encrypted volume '${volumeId}' is still in use: ${detail}. Stop the server (and anything else using the volume), then close it again.`);
    this.name = 'VolumeBusyError';
  }
}

export class VolumeKeyLengthError extends VolumeError {
  constructor(backend: string, expected: number, got: number) {
    super(`The ${backend} volume backend needs a ${expected}-byte raw key, got ${got} bytes.`);
    this.name = 'VolumeKeyLengthError';
  }
}

/** create() on a volume whose image / ciphertext directory already exists, or open() on one that does not. */
export class VolumeStateError extends VolumeError {
  constructor(message: string) {
    super(message);
    this.name = 'VolumeStateError';
  }
}
