// SSLRequest and GSSENCRequest before the StartupMessage: each is answered once per connection,
// as PostgreSQL's ProcessStartupPacket does (ssl_done, gss_done); a repeat, or either one once
// the connection is encrypted, is refused. (Found by the pre-auth fuzz campaign: the gateway
// answered 'N' to any number of GSSENCRequests.)
import { GSSENC_REQUEST_CODE, SSL_REQUEST_CODE } from './codes.js';
import { ProtocolError } from './protocol-error.js';

export class EncryptionRequests {
  private sslDone = false;
  private gssDone = false;

  /** Throws ProtocolError when this request must not be answered. `encrypted`: TLS is up. */
  check(kind: 'ssl' | 'gssenc', encrypted: boolean): void {
    const name = kind === 'ssl' ? 'SSLRequest' : 'GSSENCRequest';
    if (encrypted) throw new ProtocolError('08P01', `${name} after encryption was established`);
    const done = kind === 'ssl' ? this.sslDone : this.gssDone;
    if (done) {
      // PostgreSQL's words: the code is then read as a protocol version.
      const code = kind === 'ssl' ? SSL_REQUEST_CODE : GSSENC_REQUEST_CODE;
      throw new ProtocolError('0A000', `unsupported frontend protocol ${code >>> 16}.${code & 0xffff}: server supports 3.0 to 3.2`);
    }
    if (kind === 'ssl') this.sslDone = true;
    else this.gssDone = true;
  }
}
