// PROXY protocol v1/v2 (HAProxy's proxy-protocol.txt): parse, detect, build. No sockets here.

export { parseProxyHeader, defaultMaxHeaderBytes, absoluteMaxHeaderBytes, type ProxyParseOptions } from './parse.js';
export { startsWithProxySignature, proxyV1Prefix, proxyV2Signature } from './signature.js';
export { ProxyProtocolError, type ProxyProtocolErrorReason } from './errors.js';
export { buildProxyV1, proxyV1MaxBytes } from './v1.js';
export { buildProxyV2, azureLinkIdTlv, awsVpceIdTlv, type ProxyV2Options } from './build.js';
export { crc32c } from './crc32c.js';
export type * from './types.js';
