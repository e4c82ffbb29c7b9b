// container-init with a terminal (`podman run -it`), as tini users expect: the main
// command runs in a process group of its own, which is the terminal's foreground group,
// so Ctrl-C (the tty driver's SIGINT) reaches the main command alone: its INT trap runs
// and the container exits with the code the trap gives, container-init itself receiving
// no SIGINT. The terminal is a pseudo-terminal of util-linux script(1), into which the
// test writes Ctrl-C (podman puts that terminal in raw mode and passes the byte on to the
// container's terminal). amd64, and arm64 under qemu-user where binfmt_misc allows it.
import t from 'tap';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { execa } from 'execa';
import { have, IMAGE, IMAGE_DIR, loadImage, podmanSkip } from '../lib/container.ts';

const BINFMT = '/proc/sys/fs/binfmt_misc/qemu-aarch64';
const binfmt = existsSync(BINFMT) && readFileSync(BINFMT, 'utf8').startsWith('enabled');
/** The arm64 image's tag (as arm64.test.ts names it). */
const IMAGE_ARM64 = 'localhost/runit-ts-test:test-arm64';
/** The exit code the main command's INT trap gives. */
const TRAP_CODE = 42;
/** How long the main command may take to say it is ready: Node under qemu-user starts slowly (ms). */
const READY_TIMEOUT = { amd64: 60_000, arm64: 240_000 } as const;
/** How long the container may take to stop after Ctrl-C (ms). */
const STOP_TIMEOUT = 60_000;

/**
 * The main command: says its process group, the terminal's foreground group (fields 5
 * and 8 of /proc/PID/stat) and container-init's group, then waits for INT.
 */
const MAIN = [
  'field() { n=$2; set -- $(sed "s/.*) //" /proc/$1/stat); eval echo "\\$$n"; }',
  `trap 'echo "main: got INT"; exit ${TRAP_CODE}' INT`,
  'echo "main: pgrp=$(field $$ 3) tpgid=$(field $$ 6) init-pgrp=$(field 1 3)"',
  'echo "main: ready"',
  'while :; do sleep 0.2; done',
].join('\n');

/**
 * `podman run -it ARGS` on a pseudo-terminal (script -q -e -c ... /dev/null: its exit
 * code is the container's); Ctrl-C written once the main command is ready. Resolves
 * with everything the terminal showed and the exit code.
 */
async function runOnTerminal(args: string[], readyMs: number): Promise<{ out: string; code: number | undefined }> {
  const cmd = ['podman', 'run', '-it', ...args].map((a) => `'${a.replace(/'/g, `'\\''`)}'`).join(' ');
  const p = execa('script', ['-q', '-e', '-c', cmd, '/dev/null'], { stdin: 'pipe', reject: false, all: true, timeout: readyMs + STOP_TIMEOUT });
  let out = '';
  let sent = false;
  p.all!.on('data', (c: Buffer) => {
    out += c.toString();
    if (!sent && out.includes('main: ready')) {
      sent = true;
      p.stdin!.write('\x03');
    }
  });
  const r = await p;
  p.stdin?.destroy();
  return { out, code: r.exitCode };
}

const skip = (await podmanSkip()) || (!(await have('script')) && 'util-linux script(1) is not installed');
if (skip) t.plan(0, skip);
else {
  await loadImage();
  const arches: Array<'amd64' | 'arm64'> = ['amd64'];
  if (process.arch === 'arm64' || binfmt) {
    await execa('skopeo', ['copy', '-q', `oci:${join(IMAGE_DIR, 'aarch64', 'oci')}:test`, `containers-storage:${IMAGE_ARM64}`]);
    arches.push('arm64');
  } else t.comment(`arm64 skipped: qemu-aarch64 is not registered with binfmt_misc (${BINFMT})`);

  for (const arch of arches) {
    t.test(`${arch}: podman run -it: the main command is the terminal's foreground job and gets Ctrl-C alone`, async (t) => {
      const image = arch === 'amd64' ? IMAGE : IMAGE_ARM64;
      const { out, code } = await runOnTerminal(['--rm', '--arch', arch, '--network', 'none', '-e', 'RUNIT_TS_KILL_GRACETIME=3000', image, 'sh', '-c', MAIN], READY_TIMEOUT[arch]);
      t.comment(out.replace(/\r/g, '').split('\n').filter((l) => /main:|container-init/.test(l)).join('\n'));
      const ids = /main: pgrp=(\d+) tpgid=(-?\d+) init-pgrp=(\d+)/.exec(out);
      t.ok(ids, 'the main command said its process groups');
      const [pgrp, tpgid, initPgrp] = (ids ?? []).slice(1).map(Number);
      t.not(pgrp, initPgrp, `a process group of its own (${pgrp}), not container-init's (${initPgrp})`);
      t.equal(tpgid, pgrp, "the terminal's foreground process group is the main command's");
      t.match(out, /main: got INT/, "Ctrl-C reached the main command's INT trap");
      t.notMatch(out, /SIGINT received/, 'container-init got no SIGINT');
      t.match(out, new RegExp(`main command exited with code ${TRAP_CODE}: stopping services`), 'the main command exiting stopped the container');
      t.equal(code, TRAP_CODE, `the container's exit code is the trap's (${TRAP_CODE})`);
    });
  }
}
