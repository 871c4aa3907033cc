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
