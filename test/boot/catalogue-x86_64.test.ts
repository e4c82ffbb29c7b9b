import { catalogueSuite } from '../lib/catalogue-suite.ts';

catalogueSuite('x86_64');
