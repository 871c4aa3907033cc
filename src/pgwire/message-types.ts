// Message type bytes as data, for switches over MessageReader output.

/** Types of messages a client (frontend) sends. */
export const FrontendType = {
  Bind: 'B',
  Close: 'C',
  CopyData: 'd',
  CopyDone: 'c',
  CopyFail: 'f',
  Describe: 'D',
  Execute: 'E',
  Flush: 'H',
  FunctionCall: 'F',
  Parse: 'P',
  /** PasswordMessage, SASLInitialResponse, SASLResponse, GSSResponse: meaning depends on state. */
  AuthResponse: 'p',
  Query: 'Q',
  Sync: 'S',
  Terminate: 'X',
} as const;

/** Types of messages a server (backend) sends. */
export const BackendType = {
  Authentication: 'R',
  BackendKeyData: 'K',
  BindComplete: '2',
  CloseComplete: '3',
  CommandComplete: 'C',
  CopyData: 'd',
  CopyDone: 'c',
  CopyInResponse: 'G',
  CopyOutResponse: 'H',
  CopyBothResponse: 'W',
  DataRow: 'D',
  EmptyQueryResponse: 'I',
  ErrorResponse: 'E',
  FunctionCallResponse: 'V',
  NegotiateProtocolVersion: 'v',
  NoData: 'n',
  NoticeResponse: 'N',
  NotificationResponse: 'A',
  ParameterDescription: 't',
  ParameterStatus: 'S',
  ParseComplete: '1',
  PortalSuspended: 's',
  ReadyForQuery: 'Z',
  RowDescription: 'T',
} as const;

/** Authentication request codes carried by an 'R' message. */
export const AuthCode = {
  Ok: 0,
  KerberosV5: 2,
  CleartextPassword: 3,
  MD5Password: 5,
  GSS: 7,
  GSSContinue: 8,
  SSPI: 9,
  SASL: 10,
  SASLContinue: 11,
  SASLFinal: 12,
} as const;

/** The same type bytes as numbers, for framers that switch on the raw byte. */
export const FrontendCode = {
  Bind: 0x42,
  Close: 0x43,
  CopyData: 0x64,
  CopyDone: 0x63,
  CopyFail: 0x66,
  Describe: 0x44,
  Execute: 0x45,
  Flush: 0x48,
  FunctionCall: 0x46,
  Parse: 0x50,
  AuthResponse: 0x70,
  Query: 0x51,
  Sync: 0x53,
  Terminate: 0x58,
} as const satisfies { [K in keyof typeof FrontendType]: number };

export const BackendCode = {
  Authentication: 0x52,
  BackendKeyData: 0x4b,
  BindComplete: 0x32,
  CloseComplete: 0x33,
  CommandComplete: 0x43,
  CopyData: 0x64,
  CopyDone: 0x63,
  CopyInResponse: 0x47,
  CopyOutResponse: 0x48,
  CopyBothResponse: 0x57,
  DataRow: 0x44,
  EmptyQueryResponse: 0x49,
  ErrorResponse: 0x45,
  FunctionCallResponse: 0x56,
  NegotiateProtocolVersion: 0x76,
  NoData: 0x6e,
  NoticeResponse: 0x4e,
  NotificationResponse: 0x41,
  ParameterDescription: 0x74,
  ParameterStatus: 0x53,
  ParseComplete: 0x31,
  PortalSuspended: 0x73,
  ReadyForQuery: 0x5a,
  RowDescription: 0x54,
} as const satisfies { [K in keyof typeof BackendType]: number };
