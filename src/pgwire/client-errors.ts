// The errors a client can see, with the exact SQLSTATE and text of SPEC.md §4.
// Every refusal the gateway sends is built from this table: one place to read them all.

export interface ClientError {
  readonly sqlstate: string;
  readonly message: string;
}

export const clientErrors = {
  unknownServer: {
    sqlstate: '28000',
    message: 'Invalid Username specified. Please check the Username and retry connection. The Username should be in <username@hostname> format.',
  },
  sslRequired: { sqlstate: '28000', message: 'SSL connection is required. Please specify SSL options and retry.' },
  tlsTooOld: {
    sqlstate: '28000',
    message: 'TLS version used does not meet minimal requirements for this server. Please use a higher TLS version and retry.',
  },
  vnetNotAllowed: { sqlstate: '28000', message: 'Client from Virtual Networks is not allowed to access the server.' },
  publicAccessDisabled: {
    sqlstate: '28000',
    message: 'Public network access is denied for this server. Connect through an approved private endpoint.',
  },
  privateEndpointNotApproved: {
    sqlstate: '28000',
    message: 'Private endpoint connection is not approved for this server.',
  },
  badToken: {
    sqlstate: '28000',
    message: 'An error occurred while validating the access token. Please acquire a new token and retry.',
  },
  throttled: { sqlstate: '53300', message: 'Too many failed login attempts from this address. Try again later.' },
  inaccessible: { sqlstate: '08004', message: 'Server is inaccessible: its encryption key cannot be accessed.' },
  tooManyClients: { sqlstate: '53300', message: 'sorry, too many clients already' },
  passwordAuthDisabled: {
    sqlstate: '28000',
    message: 'Password authentication is disabled for this server. Sign in with an access token.',
  },
  auditUnavailable: {
    sqlstate: '58030',
    message: 'The audit log cannot be written: new connections are refused until it can.',
  },
  serverStopped: { sqlstate: '57P03', message: 'The server is stopped. Start it and retry connection.' },
  serverDisabled: { sqlstate: '57P03', message: 'The server is disabled. Contact the platform operator.' },
  serverDropping: { sqlstate: '57P03', message: 'The server is being deleted.' },
} as const satisfies Record<string, ClientError>;

export function noFirewallRule(ip: string, user: string, database: string, ssl: boolean): ClientError {
  return {
    sqlstate: '28000',
    message: `no pg_hba.conf entry for host "${ip}", user "${user}", database "${database}", SSL ${ssl ? 'on' : 'off'}`,
  };
}

export function passwordFailed(user: string): ClientError {
  return { sqlstate: '28P01', message: `password authentication failed for user "${user}"` };
}
