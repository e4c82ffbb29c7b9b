import { reliabilitySuite } from '../lib/reliability-boot.ts';

reliabilitySuite('aarch64');
