import { suite } from '../lib/boot-suite.ts';

suite('x86_64');
