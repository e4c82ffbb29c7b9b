// The overlay output on Debian 12 for arm64, under qemu-user (test/lib/overlay.ts): too
// slow for every run when the Debian base is not cached yet (its maintainer scripts run
// under emulation), so in make reliability, after debian-nginx-arm64.test.ts has cached
// that base; x86_64's is in test/container/overlay.test.ts.
import { overlaySuite } from '../lib/overlay.ts';

await overlaySuite([{ arch: 'aarch64', kinds: ['debian'] }]);
