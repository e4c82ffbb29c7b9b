// Helpers for the container tests: the shared test image (make test-container builds it
// once from test/fixtures/container/spec.yaml into out/test-image), podman with the
// flags this kind of host needs, and polling.
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { execa } from 'execa';
import { repo } from './host.ts';

export { repo };
export const IMAGE_DIR = process.env.RUNIT_TS_TEST_IMAGE ?? join(repo, 'out', 'test-image');
export const IMAGE = 'localhost/runit-ts-test:test';
export const NODE = process.execPath;

export function haveImage(): string | false {
  return existsSync(join(IMAGE_DIR, 'x86_64', 'image.tar')) ? false : `no test image in ${IMAGE_DIR} (make test-container builds it)`;
}

export async function have(cmd: string): Promise<boolean> {
  return (await execa('sh', ['-c', `command -v ${cmd}`], { reject: false })).exitCode === 0;
}

/** Why the podman tests cannot run here (no test image, no podman), or false. */
export async function podmanSkip(): Promise<string | false> {
  return haveImage() || (!(await have('podman')) && 'podman is not installed (scripts/setup installs it)');
}

/** The names of the containers a test file starts: removed (rm -f) when the file's tests end. */
export function containerNames(t: { teardown: (fn: () => Promise<unknown>) => void }): string[] {
  const names: string[] = [];
  t.teardown(async () => {
    if (names.length) await podman(['rm', '-f', '-t', '0', ...names], { reject: false });
  });
  return names;
}

/** podman, quiet about the missing systemd (no healthcheck timers on this kind of host). */
export async function podman(args: string[], opts: { reject?: boolean; timeout?: number } = {}) {
  return execa('podman', args, { reject: opts.reject ?? true, timeout: opts.timeout ?? 120_000, all: true });
}

/** Load the amd64 docker-archive (once per test file; podman keeps it). */
export async function loadImage(): Promise<void> {
  const r = await podman(['load', '-i', join(IMAGE_DIR, 'x86_64', 'image.tar')]);
  if (!/Loaded image.*runit-ts-test:test/.test(r.stdout + r.stderr)) throw new Error(`podman load: ${r.all}`);
}

export async function until<T>(what: string, f: () => Promise<T | undefined | false>, ms = 20_000): Promise<T> {
  const end = Date.now() + ms;
  for (;;) {
    const v = await f();
    if (v) return v;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

export async function logs(name: string): Promise<string> {
  return (await podman(['logs', name], { reject: false })).all ?? '';
}

export function json<T>(p: string): T {
  return JSON.parse(readFileSync(p, 'utf8')) as T;
}
