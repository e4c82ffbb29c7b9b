import { reliabilitySuite } from '../lib/reliability-boot.ts';

reliabilitySuite('x86_64');
