// The Debian-based image on aarch64 (test/lib/debian-suite.ts): the disk through the firmware
// boot paths and the initramfs (make reliability; the direct boot is in test/boot).
import { debianSuite } from '../lib/debian-suite.ts';

debianSuite('aarch64', 'paths');
