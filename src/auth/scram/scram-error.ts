// The error for malformed or refused SCRAM input. Messages name the rule that failed and never
// carry secrets (no proofs, keys or nonces), so they can be logged as they are. `sqlstate` is what
// PostgreSQL reports for the same failure: '08P01' protocol violation, '0A000' unsupported
// feature, '28000' channel binding check failed.

export class ScramError extends Error {
  override readonly name = 'ScramError';
  readonly sqlstate: string;

  constructor(message: string, sqlstate = '08P01') {
    super(message);
    this.sqlstate = sqlstate;
  }
}
