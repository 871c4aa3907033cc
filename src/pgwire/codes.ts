// Request codes and protocol versions of the untyped packets (startup phase).

/** 1234.5679: the client asks for TLS. */
export const SSL_REQUEST_CODE = 80877103;
/** 1234.5680: the client asks for GSSAPI encryption. */
export const GSSENC_REQUEST_CODE = 80877104;
/** 1234.5678: cancel a query running on another connection. */
export const CANCEL_REQUEST_CODE = 80877102;
/** Protocol 3.0, the only version the gateway speaks (3.x minors get NegotiateProtocolVersion). */
export const PROTOCOL_3_0 = 3 << 16;

/** PostgreSQL's MAX_STARTUP_PACKET_LENGTH. */
export const MAX_STARTUP_PACKET_LENGTH = 10000;
/** Bound for one typed message before authentication completes. */
export const MAX_PREAUTH_MESSAGE_LENGTH = 1024 * 1024;
/** Cancel keys: 4 bytes up to protocol 3.1, up to 256 bytes from protocol 3.2 (PostgreSQL 18). */
export const MIN_CANCEL_KEY_LENGTH = 4;
export const MAX_CANCEL_KEY_LENGTH = 256;
