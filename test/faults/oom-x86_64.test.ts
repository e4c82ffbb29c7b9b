// The supervisor OOM-killed in its cgroup on a booted x86_64 image (test/lib/faults-boot.ts).
import { oomSuite } from '../lib/faults-boot.ts';

oomSuite('x86_64');
