import { timelineSuite } from '../lib/timeline-suite.ts';

timelineSuite('aarch64');
