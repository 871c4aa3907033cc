// Encrypted volumes for managed servers: the interface, the two backends and their errors.
export { chooseBackend, volumeBackend, volumeDataDir, type BackendName, type ProbeResult, type VolumeBackend, type VolumeSpec } from './volume.js';
export { FscryptBackend } from './fscrypt.js';
export { GocryptfsBackend } from './gocryptfs.js';
export * from './errors.js';
