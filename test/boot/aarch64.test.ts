import { suite } from '../lib/boot-suite.ts';

suite('aarch64');
