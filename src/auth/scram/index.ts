// SCRAM-SHA-256 for the gateway: verifiers, the server side of the client's exchange, the client
// side towards the real server (ClientKey passthrough), and channel binding.

export { ScramError } from './scram-error.js';
export * from './verifier.js';
export * from './server.js';
export * from './client.js';
export * from './channel-binding.js';
export { saslprep, scramPasswordBytes } from './saslprep.js';
