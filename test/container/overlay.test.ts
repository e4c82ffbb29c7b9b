// The overlay output on images that are not ours (test/lib/overlay.ts): a busybox-only
// image with glibc and one with no libc, on x86_64 and, through qemu-user, on arm64; and
// Debian 12 on x86_64 (its base shared with debian.test.ts through the Debian cache; the
// arm64 Debian case is in test/long, make reliability).
import { overlaySuite } from '../lib/overlay.ts';

await overlaySuite([
  { arch: 'x86_64', kinds: ['glibc', 'nolibc', 'debian'] },
  { arch: 'aarch64', kinds: ['glibc', 'nolibc'] },
]);
