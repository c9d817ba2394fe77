import { addressContract } from './addresses.contract';
import { coordinationContract } from './coordination.contract';
import { discoveryContract } from './discovery.contract';
import { expiryContract } from './expiry.contract';
import { feedContract } from './feed.contract';
import { leaseContract } from './leases.contract';
import { policyContract } from './policies.contract';
import { portContract } from './ports.contract';
import { prefixContract } from './prefix.contract';
import { restoreContract } from './restore.contract';
import { snapshotContract } from './snapshot.contract';
import { storeContext, type StoreFactory } from './store-context';
import { tokenContract } from './tokens.contract';

export type { StoreFactory } from './store-context';

/**
 * The one behaviour every Store implementation (src/registry/store.ts) must show, one file per concern of
 * the interface; each file's header names the rules it holds. A runner calls `storeContract(name, factory)`
 * and every case runs against a fresh store from `factory` (store-context.ts opens and closes it).
 */
export function storeContract(name: string, factory: StoreFactory): void {
  describe(`store contract: ${name}`, function () {
    this.timeout(20000);
    const ctx = storeContext(name, factory);
    leaseContract(ctx);
    portContract(ctx);
    addressContract(ctx);
    discoveryContract(ctx);
    expiryContract(ctx);
    tokenContract(ctx);
    snapshotContract(ctx);
    feedContract(ctx);
    restoreContract(ctx);
    policyContract(ctx);
    prefixContract(ctx);
    coordinationContract(ctx);
  });
}
