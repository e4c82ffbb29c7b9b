import { timelineSuite } from '../lib/timeline-suite.ts';

timelineSuite('x86_64');
