// scripts/sea.ts: a Node single executable from a SEA blob: a stripped copy of the arch's
// pinned Node binary with the blob postjected under Node's SEA fuse. scripts/build.ts
// makes ours so, bench/hello.ts the minimal one the benchmarks' ratios are read against.
import { chmodSync, copyFileSync, renameSync } from 'node:fs';
import { join } from 'node:path';
import { execa } from 'execa';
import { nodeBinary, repoRoot } from '../image/inputs.ts';
import { stripTool, type Arch } from '../src/lib/platform.ts';

/** the fuse every Node single executable is postjected with */
const SEA_FUSE = 'NODE_SEA_FUSE_fce680ab2cc467b6e072b8b5df1996b2';

/** Write `target`: `arch`'s pinned Node, stripped, with `blobFile` injected (whole or not at all). */
export async function seaExecutable(arch: Arch, blobFile: string, target: string): Promise<void> {
  const tmp = `${target}.tmp`;
  copyFileSync(nodeBinary(arch), tmp);
  chmodSync(tmp, 0o755);
  await execa(stripTool(arch), ['--strip-all', tmp]);
  await execa(process.execPath, [join(repoRoot, 'node_modules', 'postject', 'dist', 'cli.js'), tmp, 'NODE_SEA_BLOB', blobFile, '--sentinel-fuse', SEA_FUSE], {
    stdout: 'ignore',
  });
  renameSync(tmp, target);
}
