// The Debian-based image on x86_64 (test/lib/debian-suite.ts): the disk through the firmware
// boot paths and the initramfs (make reliability; the direct boot is in test/boot).
import { debianSuite } from '../lib/debian-suite.ts';

debianSuite('x86_64', ['paths']);
