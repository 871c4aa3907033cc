// The one error the PROXY protocol parser throws. `reason` is a stable code for logs and
// metrics; the message says what was wrong (never echoes more than a few header bytes).

export type ProxyProtocolErrorReason =
  /** Not a PROXY header: the first bytes match neither "PROXY " nor the v2 signature. */
  | 'bad-signature'
  /** v2 version nibble is not 2. */
  | 'bad-version'
  /** v2 command nibble is neither LOCAL (0) nor PROXY (1). */
  | 'bad-command'
  /** Unknown address family / transport (v2 byte 14, v1 protocol word). */
  | 'bad-family'
  /** An address or port that is not valid for its family. */
  | 'bad-address'
  /** v1 line not in the exact grammar (spacing, characters, field count, bare CR or LF). */
  | 'bad-syntax'
  /** v2 declared length shorter than the address block its family requires. */
  | 'truncated'
  /** Header longer than allowed (v1: 107 bytes; v2: 16 + length > maxHeaderBytes). */
  | 'too-long'
  /** A TLV (or SSL sub-TLV) running past its container, malformed, or duplicated. */
  | 'bad-tlv'
  /** PP2_TYPE_CRC32C present and not matching the header. */
  | 'bad-crc';

export class ProxyProtocolError extends Error {
  override readonly name = 'ProxyProtocolError';
  constructor(
    readonly reason: ProxyProtocolErrorReason,
    message: string,
  ) {
    super(message);
  }
}
