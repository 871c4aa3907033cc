// The one error type of the wire codec. Every malformed input ends here, with the SQLSTATE the
// gateway puts in its FATAL ErrorResponse: '08P01' protocol violation, '0A000' unsupported
// protocol version, '28000' a startup packet without a user name (as PostgreSQL does).

export class ProtocolError extends Error {
  override readonly name = 'ProtocolError';
  readonly sqlstate: string;

  constructor(sqlstate: string, message: string) {
    super(message);
    this.sqlstate = sqlstate;
  }
}

export function protocolViolation(message: string): ProtocolError {
  return new ProtocolError('08P01', message);
}
