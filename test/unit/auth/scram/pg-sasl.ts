// node-postgres' SCRAM client (node_modules/pg/lib/crypto/sasl.js), typed for the tests: a real,
// independent client implementation to authenticate against ScramServerSession.

import { createRequire } from 'node:module';

export interface PgSaslSession {
  mechanism: string;
  response: string;
  message: string;
}

/** What pg reads from a TLS socket for channel binding. */
export interface PgStream {
  getPeerCertificate(): { raw: Buffer };
}

interface PgSasl {
  startSession(mechanisms: string[], stream?: PgStream | false): PgSaslSession;
  continueSession(session: PgSaslSession, password: string, serverData: string, stream?: PgStream | false): Promise<void>;
  finalizeSession(session: PgSaslSession, serverData: string): void;
}

const require = createRequire(import.meta.url);
export const pgSasl = require('pg/lib/crypto/sasl.js') as PgSasl;

/** A stand-in for the TLS socket: pg only asks it for the peer certificate's DER bytes. */
export function peerCertificate(der: Buffer): PgStream {
  return { getPeerCertificate: () => ({ raw: der }) };
}
