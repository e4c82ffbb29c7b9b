import { agentSuite } from '../lib/agent-suite.ts';

agentSuite('x86_64');
