// Debian's nginx in a Debian-based container image under podman, arm64 under qemu-user
// (test/lib/debian-nginx.ts; make reliability: the amd64 one is in make test).
import { nginxSuite } from '../lib/debian-nginx.ts';

await nginxSuite(['aarch64']);
