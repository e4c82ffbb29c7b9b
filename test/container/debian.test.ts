// Debian's nginx in a Debian-based container image under podman, amd64 (test/lib/debian-nginx.ts).
import { nginxSuite } from '../lib/debian-nginx.ts';

await nginxSuite(['x86_64']);
