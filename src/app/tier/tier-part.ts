// Joining the gateway tier: a process's tier channel on the catalog it follows, and the tier key
// derived from the platform's root key (every gateway of the platform reads the same secrets
// dir, so every one derives the same key and nothing secret travels through the catalog).
import type { Logger } from 'pino';
import type { EventBus } from '../../events/bus.js';
import { TierChannel } from '../../catalog/tier-channel.js';
import type { CatalogPart } from '../catalog-part.js';
import type { Host } from '../host.js';
import type { ThrottleBlocks } from './block-sync.js';
import { GatewayTier } from './gateway-tier.js';

/** The KEK id the tier key is derived under (HKDF info pgwarden/kek/v1/server/<this>). */
const TIER_KEY_ID = 'platform-gateway-tier';

export async function joinTier(
  catalog: CatalogPart,
  host: Host,
  d: {
    readonly name: string;
    readonly throttle: ThrottleBlocks;
    readonly bus: EventBus;
    readonly log: Logger;
    readonly cancelHere: (processId: number, secretKey: Buffer) => Promise<boolean>;
  },
): Promise<GatewayTier> {
  const channel = new TierChannel((prepare) => catalog.hosts.connect({ application_name: 'pgwarden-tier' }, prepare), catalog.db);
  const tier = new GatewayTier({ ...d, channel, key: host.kekRoot.deriveKek(TIER_KEY_ID, 1) });
  try {
    await tier.start();
  } catch (err) {
    await tier.stop().catch(() => undefined);
    throw err;
  }
  return tier;
}
