// A realistic alert for the notifier tests, with fields overridable.
import type { AlertForDelivery } from '../../../../src/threat/notify/types.js';

export function alertFixture(over: Partial<AlertForDelivery> = {}): AlertForDelivery {
  return {
    id: '0b5c3f0e-8a47-4a53-9c55-0d2f1f8a7e21',
    server: 'orders',
    type: 'BruteForce',
    severity: 'High',
    title: 'Successful login after brute force on server orders',
    description: 'Role app_writer logged in from 203.0.113.7 after 42 failed attempts from the same address in 5 minutes.',
    tactic: 'Credential Access',
    principal: 'app_writer',
    sourceAddress: '203.0.113.7',
    location: { country: 'NL', asn: 64500, organization: 'Example Hosting BV', kind: 'hosting' },
    firstSeen: '2025-03-04T10:15:00.000Z',
    lastSeen: '2025-03-04T10:20:30.000Z',
    count: 43,
    evidence: { failedLogins: 42, windowSeconds: 300, users: ['app_writer', 'postgres'], method: 'scram-sha-256' },
    recommendedAction: 'Rotate the password of app_writer now and block 203.0.113.7 with the firewall.',
    consoleUrl: 'https://pgwarden.example/servers/orders/alerts/0b5c3f0e-8a47-4a53-9c55-0d2f1f8a7e21',
    ...over,
  };
}
