// Server parameters no owner may set, with the reason each one is the platform's: they would
// open the server to the network, weaken authentication, move or hide the files the platform
// reads, load code outside the allow-list, or turn off its audit.

export interface ParameterRefusal {
  match(name: string): boolean;
  readonly reason: string;
}

const exact = (names: readonly string[], reason: string): ParameterRefusal => ({ match: (n) => names.includes(n), reason });
const prefix = (p: string, reason: string): ParameterRefusal => ({ match: (n) => n.startsWith(p), reason });

export const PARAMETER_REFUSALS: readonly ParameterRefusal[] = [
  exact(['ssl'], 'clients reach the server only through the gateway, which terminates TLS; use sslEnforcement and minimalTlsVersion instead.'),
  prefix('ssl_', 'clients reach the server only through the gateway, which terminates TLS; use sslEnforcement and minimalTlsVersion instead.'),
  exact(
    ['listen_addresses', 'port'],
    'a managed server listens on no TCP port, only on a Unix socket the gateway reaches; opening it would bypass the perimeter.',
  ),
  prefix('unix_socket_', "the server's socket directory and its permissions keep everyone but the platform out."),
  exact(
    ['hba_file', 'ident_file', 'config_file', 'data_directory', 'external_pid_file'],
    "the platform writes and owns the server's files and their locations.",
  ),
  exact(
    ['password_encryption', 'authentication_timeout', 'krb_server_keyfile', 'db_user_namespace'],
    "authentication is the platform's: only SCRAM-SHA-256 verifiers, checked at the gateway.",
  ),
  prefix('archive_', "the WAL archive is the platform's encrypted backup stream."),
  exact(
    ['restore_command', 'archive_cleanup_command', 'recovery_end_command', 'wal_level_minimal'],
    "the WAL archive is the platform's encrypted backup stream.",
  ),
  exact(
    [
      'log_destination',
      'logging_collector',
      'log_directory',
      'log_filename',
      'log_file_mode',
      'log_rotation_age',
      'log_rotation_size',
      'log_truncate_on_rotation',
      'syslog_facility',
      'syslog_ident',
      'event_source',
    ],
    'the platform reads the server log (pgAudit records) from where and in the format it configured.',
  ),
  exact(
    ['session_preload_libraries', 'local_preload_libraries', 'dynamic_library_path', 'jit_provider'],
    'loading libraries is limited to the allow-list of shared_preload_libraries.',
  ),
  prefix('pgaudit', "pgAudit is configured by the server's audit settings (pgwarden server audit update)."),
  prefix('pgwarden', "this parameter is the platform's own."),
  exact(
    [
      'allow_system_table_mods',
      'ignore_system_indexes',
      'zero_damaged_pages',
      'ignore_checksum_failure',
      'fsync',
      'full_page_writes',
      'data_sync_retry',
      'session_replication_role',
    ],
    "it would let the server lose or corrupt data, or bypass the platform's triggers.",
  ),
];
