// Encrypted volumes for managed servers: the interface, the two backends and their errors.
export { chooseBackend, volumeBackend } from './volume.js';
export { volumeDataDir, type BackendName, type ProbeResult, type VolumeBackend, type VolumeSpec } from './backend.js';
export { FscryptBackend } from './fscrypt.js';
export { GocryptfsBackend } from './gocryptfs.js';
export * from './errors.js';
