// The Debian-based image on aarch64 (test/lib/debian-suite.ts), from one build: the direct
// disk boot, reboot, power-off and a clean root, then the firmware boot paths and the
// initramfs (make reliability: an emulated aarch64 Debian boot takes minutes).
import { debianSuite } from '../lib/debian-suite.ts';

debianSuite('aarch64', ['direct', 'paths']);
