// Boot tests of our images: a test image is the built initramfs plus a small cpio
// appended (the kernel unpacks concatenated archives in order), holding the test services.
import { appendFileSync, copyFileSync, existsSync } from 'node:fs';
import { createServer, type AddressInfo } from 'node:net';
import { join } from 'node:path';
import type { Entry } from '../../src/lib/entry.ts';
import { cpioBuffer, writeCpio } from '../../src/lib/cpio.ts';
import { bootFiles } from '../../image/packers/initramfs.ts';
import { inlineService, rootfs, type ImageSpec, type ServiceDef } from '../../image/rootfs.ts';
import { boot, type Machine } from '../../src/harness/index.ts';
import type { Arch } from '../../image/inputs.ts';
import { processTempDir, repo } from './host.ts';

export const PROMPT = /runit-ts:[^\n]*# /;

export interface TestImage {
  kernel: string;
  initrd: string;
  append: string;
}

export function outDir(arch: Arch): string {
  return join(repo, 'out', arch);
}

export function haveImage(arch: Arch): boolean {
  return existsSync(join(outDir(arch), 'initramfs.img'));
}

/**
 * The built image of `arch` with these services added, and `extra` entries after them (a
 * copy removed when the test process exits).
 */
export function testImage(arch: Arch, services: ServiceDef[], name: string, extra: Entry[] = []): TestImage {
  const out = outDir(arch);
  const dir = processTempDir(`runit-ts-${name}-`);
  const initrd = join(dir, 'initramfs.img');
  copyFileSync(join(out, 'initramfs.img'), initrd);
  appendFileSync(initrd, cpioBuffer([...services.flatMap(inlineService), ...extra]));
  return { ...bootFiles(out, arch), initrd };
}

/** An image built whole from `spec` (with the built binaries of out/<arch>), plus `extra` entries. */
export async function specImage(spec: ImageSpec, extra: Entry[], name: string): Promise<TestImage> {
  const out = outDir(spec.arch);
  const dir = processTempDir(`runit-ts-${name}-`);
  const initrd = join(dir, 'initramfs.img');
  await writeCpio(initrd, [...rootfs(spec, out), ...extra]);
  return { ...bootFiles(out, spec.arch), initrd };
}

/** A free TCP port on the host's loopback (for a hostfwd). */
export async function freePort(): Promise<number> {
  const srv = createServer();
  await new Promise<void>((ok) => srv.listen(0, '127.0.0.1', ok));
  const port = (srv.address() as AddressInfo).port;
  await new Promise((ok) => srv.close(ok));
  return port;
}

/** Boot a test image; every guest gets a NIC on QEMU's user network (restrict=on), `hostfwd` forwards into it. */
export async function start(arch: Arch, img: TestImage, logName: string, hostfwd: string[] = []): Promise<Machine> {
  return boot({
    arch,
    kernel: img.kernel,
    initrd: img.initrd,
    append: img.append,
    memory: 1024,
    network: hostfwd.length ? { hostfwd } : true,
    consoleLog: join(repo, 'out', 'test-logs', `${arch}-${logName}.log`),
  });
}

/** Ten services that each take a second to become ready, and say so on the console. */
export function parallelServices(n = 10): ServiceDef[] {
  return Array.from({ length: n }, (_, i) => ({
    name: `par${i}`,
    files: {
      run:
        '#!/bin/sh\n' +
        `read up _ < /proc/uptime; echo "START par${i} $up"\n` +
        `sleep 1; touch /run/par${i}.ready\n` +
        `read up _ < /proc/uptime; echo "READY par${i} $up"\n` +
        'exec sleep 100000\n',
      check: `#!/bin/sh\ntest -e /run/par${i}.ready\n`,
      finish: `#!/bin/sh\nrm -f /run/par${i}.ready\necho "FINISH par${i} $1 $2"\n`,
    },
  }));
}

/**
 * Twenty services, each logging through svlogd into log/main (rotated at 4 KiB, 10 kept);
 * one of them runs as nobody through chpst.
 */
export function loggedServices(n = 20): ServiceDef[] {
  return Array.from({ length: n }, (_, i) => {
    const body =
      i === 0
        ? 'exec chpst -u nobody sh -c \'echo "uid $(id -u)"; i=0; while [ $i -lt 300 ]; do echo "svc0 line $i of the log rotation test"; i=$((i+1)); done; exec sleep 100000\''
        : `echo "svc${i} started"; exec sleep 100000`;
    return {
      name: `svc${i}`,
      files: {
        run: `#!/bin/sh\nexec 2>&1\n${body}\n`,
        finish: `#!/bin/sh\necho "STOPPED svc${i}" > /dev/console\n`,
        'log/run': '#!/bin/sh\nexec svlogd -tt ./main\n',
        'log/main/config': 's4096\nn10\n',
      },
    };
  });
}
