// Serializers for the messages the gateway sends to a PostgreSQL server, as its client.

import { CANCEL_REQUEST_CODE, MAX_CANCEL_KEY_LENGTH, MIN_CANCEL_KEY_LENGTH, PROTOCOL_3_0, SSL_REQUEST_CODE } from './codes.js';
import { FrontendType } from './message-types.js';
import { MessageWriter } from './message-writer.js';

/** StartupMessage, protocol 3.0: name/value pairs then an empty name. */
export function startupMessage(params: Readonly<Record<string, string>> | ReadonlyMap<string, string>): Buffer {
  const entries = params instanceof Map ? [...params.entries()] : Object.entries(params);
  const w = new MessageWriter().int32(PROTOCOL_3_0);
  for (const [name, value] of entries) {
    if (name === '') throw new TypeError('startup parameter name must not be empty');
    w.cstring(name).cstring(value);
  }
  return w.int8(0).packet();
}

/** SSLRequest, for a TLS leg to a server. */
export function sslRequest(): Buffer {
  return new MessageWriter().int32(SSL_REQUEST_CODE).packet();
}

/** SASLInitialResponse: mechanism, int32 length of data (-1 when there is none), data. */
export function saslInitialResponse(mechanism: string, data: Uint8Array | null): Buffer {
  const w = new MessageWriter().cstring(mechanism);
  if (data === null) w.int32(-1);
  else w.int32(data.length).bytes(data);
  return w.message(FrontendType.AuthResponse);
}

export function saslResponse(data: Uint8Array): Buffer {
  return new MessageWriter().bytes(data).message(FrontendType.AuthResponse);
}

/** PasswordMessage: the text, NUL-terminated. */
export function passwordMessage(text: string): Buffer {
  return new MessageWriter().cstring(text).message(FrontendType.AuthResponse);
}

/** CancelRequest: length, code 80877102, process id, secret key (4..256 bytes). */
export function cancelRequest(processId: number, secretKey: Uint8Array): Buffer {
  if (secretKey.length < MIN_CANCEL_KEY_LENGTH || secretKey.length > MAX_CANCEL_KEY_LENGTH) {
    throw new RangeError(`cancel key must be ${MIN_CANCEL_KEY_LENGTH} to ${MAX_CANCEL_KEY_LENGTH} bytes`);
  }
  return new MessageWriter().int32(CANCEL_REQUEST_CODE).int32(processId).bytes(secretKey).packet();
}

export function terminate(): Buffer {
  return new MessageWriter().message(FrontendType.Terminate);
}
