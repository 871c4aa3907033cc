// The wire codec's public surface.

export * from './codes.js';
export * from './message-types.js';
export { ProtocolError } from './protocol-error.js';
export * from './startup.js';
export * from './encryption-requests.js';
export * from './reader.js';
export * from './backend.js';
export * from './frontend.js';
export * from './parse-backend.js';
export * from './parse-frontend.js';
export * from './observer/index.js';
