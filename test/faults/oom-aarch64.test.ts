// The supervisor OOM-killed in its cgroup on a booted aarch64 image (test/lib/faults-boot.ts).
import { oomSuite } from '../lib/faults-boot.ts';

oomSuite('aarch64');
