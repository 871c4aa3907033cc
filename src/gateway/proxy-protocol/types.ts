// What a PROXY protocol header says about the connection behind the load balancer.

export interface ProxyAddress {
  /** IPv4 dotted quad, IPv6 RFC 5952 text (IPv4-mapped kept as "::ffff:a.b.c.d"), or a Unix path. */
  readonly address: string;
  /** TCP/UDP port; 0 for Unix sockets. */
  readonly port: number;
}

export interface ProxyTlv {
  readonly type: number;
  readonly value: Buffer;
}

/** PP2_TYPE_SSL (0x20), decoded. */
export interface ProxySsl {
  /** PP2_CLIENT_SSL (0x01), PP2_CLIENT_CERT_CONN (0x02), PP2_CLIENT_CERT_SESS (0x04) bits. */
  readonly client: number;
  /** 0 when the client presented a certificate that was verified. */
  readonly verify: number;
  readonly version?: string;
  readonly commonName?: string;
  readonly cipher?: string;
  readonly signatureAlgorithm?: string;
  readonly keyAlgorithm?: string;
  /** Every sub-TLV, raw, in order. */
  readonly tlvs: readonly ProxyTlv[];
}

export type ProxyCommand = 'PROXY' | 'LOCAL';
export type ProxyFamily = 'inet' | 'inet6' | 'unix' | 'unspec';
export type ProxyTransport = 'stream' | 'dgram' | 'unspec';

export interface ProxyHeader {
  readonly version: 1 | 2;
  /** v1 is always PROXY (UNKNOWN is family 'unspec'). LOCAL: use the real socket endpoints. */
  readonly command: ProxyCommand;
  readonly family: ProxyFamily;
  readonly transport: ProxyTransport;
  /** Present for command PROXY with family inet, inet6 or unix. */
  readonly source?: ProxyAddress;
  readonly destination?: ProxyAddress;
  /** Every top-level TLV, raw (copied out of the input), in order. */
  readonly tlvs: readonly ProxyTlv[];
  /** True only when a PP2_TYPE_CRC32C TLV was present and matched. */
  readonly crc32cVerified: boolean;
  /** Azure Private Link LinkID: TLV 0xEE, subtype 0x01, uint32 little-endian. */
  readonly azureLinkId?: number;
  /** AWS VPC endpoint id: TLV 0xEA, subtype 0x01, printable ASCII. */
  readonly awsVpceId?: string;
  /** PP2_TYPE_ALPN (0x01), as latin1 text. */
  readonly alpn?: string;
  /** PP2_TYPE_AUTHORITY (0x02): the host name the client asked for (SNI), UTF-8. */
  readonly authority?: string;
  /** PP2_TYPE_UNIQUE_ID (0x05), at most 128 bytes. */
  readonly uniqueId?: Buffer;
  readonly ssl?: ProxySsl;
}

export type ProxyParseResult = { readonly status: 'incomplete' } | { readonly status: 'ok'; readonly consumed: number; readonly header: ProxyHeader };
