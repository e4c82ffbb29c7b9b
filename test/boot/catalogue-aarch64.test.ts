import { catalogueSuite } from '../lib/catalogue-suite.ts';

catalogueSuite('aarch64');
