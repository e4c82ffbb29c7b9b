import { agentSuite } from '../lib/agent-suite.ts';

agentSuite('aarch64');
