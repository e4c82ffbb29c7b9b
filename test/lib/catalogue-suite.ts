// The service catalogue (services/) and the runlevels, booted once per arch: an image
// whose console has a login (getty) instead of the bare root shell, with syslogd,
// klogd, DHCP, crond, an SSH server and a user's own service tree, switched to the single runlevel
// and back with runsvchdir.
import t from 'tap';
import { mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { execa } from 'execa';
import type { Entry } from '../../src/lib/entry.ts';
import type { Arch } from '../../image/inputs.ts';
import type { ImageSpec, LoginSpec } from '../../image/rootfs.ts';
import type { Machine } from '../../src/harness/index.ts';
import { freePort, haveImage, PROMPT, specImage, start } from './boot.ts';
import { repo } from './host.ts';

export const CATALOGUE = ['getty', 'syslogd', 'klogd', 'network', 'crond', 'sshd', 'ntp'];
/** The guest's NTP server for the test: its own clock, 100 s ahead. */
const NTP_AHEAD = 100;
const PASSWORD = 'correct horse';

/** alice's own service tree, run by the system service runsvdir-alice. */
function userTree(): Entry[] {
  const own = { uid: 1000, gid: 1000 };
  const file = (path: string, s: string, mode = 0o755): Entry => ({ path, type: 'file', mode, data: Buffer.from(s), ...own });
  const dir = (path: string): Entry => ({ path, type: 'dir', mode: 0o755, ...own });
  return [
    { path: 'etc/passwd', type: 'file', mode: 0o644, data: Buffer.from('root:x:0:0:root:/root:/bin/sh\nalice:x:1000:1000:alice:/home/alice:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n') },
    { path: 'etc/group', type: 'file', mode: 0o644, data: Buffer.from('root:x:0:\ntty:x:5:\nalice:x:1000:\nnogroup:x:65534:\n') },
    dir('home/alice'),
    dir('home/alice/service'),
    dir('home/alice/service/hello'),
    file('home/alice/service/hello/run', '#!/bin/sh\nexec 2>&1\necho "hello from $(id -un)"\nexec sleep 100000\n'),
    dir('home/alice/service/hello/log'),
    dir('home/alice/service/hello/log/main'),
    file('home/alice/service/hello/log/run', '#!/bin/sh\nexec svlogd main\n'),
  ];
}

async function login(m: Machine, how: LoginSpec, from: number): Promise<void> {
  if (how.autologin) {
    // the login shell's banner, not a prompt of a shell that is about to go
    const banner = await m.waitFor('built-in shell (ash)', { from, timeout: 120_000 });
    await m.waitFor(PROMPT, { from: banner.end, timeout: 60_000 });
    return;
  }
  const l = await m.waitFor(/login: $/, { from, timeout: 120_000 });
  await m.sendLine('root');
  const p = await m.waitFor(/Password: $/, { from: l.end, timeout: 30_000 });
  await m.sendLine(PASSWORD);
  await m.waitFor(PROMPT, { from: p.end, timeout: 60_000 });
}

export function catalogueSuite(arch: Arch): void {
  if (!haveImage(arch)) {
    t.fail(`out/${arch}/initramfs.img is missing: run make image ARCH=${arch}`);
    return;
  }
  mkdirSync(join(repo, 'out', 'test-logs'), { recursive: true });
  // one arch logs in with a password, the other is logged in automatically
  const how: LoginSpec = arch === 'x86_64' ? { password: PASSWORD } : { autologin: 'root' };
  const keyDir = mkdtempSync(join(tmpdir(), 'runit-ts-ssh-'));
  const key = join(keyDir, 'id_ed25519');
  const spec = (pub: string): ImageSpec => ({
    arch,
    services: CATALOGUE,
    ssh: { authorizedKeys: [pub] },
    ntp: { server: '127.0.0.1:1123' },
    login: how,
    cron: ['* * * * * echo "cron ran as $(id -un)" >> /tmp/cron.out'],
    inline: [
      { name: 'runsvdir-alice', files: { run: '#!/bin/sh\nexec 2>&1\nexec chpst -u alice runsvdir -P /home/alice/service\n' } },
      {
        name: 'sntp-server',
        files: {
          run: `#!/bin/sh\nexec 2>&1\nexec runit-ts sntp --serve --offset ${NTP_AHEAD} 127.0.0.1:1123\n`,
          'log/run': '#!/bin/sh\nexec svlogd main\n',
          'log/main/config': 's100000\n',
        },
      },
    ],
  });

  t.test(`${arch}: the service catalogue, a user's service tree, runlevels`, async (t) => {
    t.teardown(() => rmSync(keyDir, { recursive: true, force: true }));
    await execa('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-C', 'catalogue-test', '-f', key]);
    const port = await freePort();
    const img = await specImage(spec(readFileSync(`${key}.pub`, 'utf8').trim()), userTree(), 'catalogue');
    const m = await start(arch, img, 'catalogue', [`tcp:127.0.0.1:${port}-:22`]);
    t.teardown(() => m.dispose());
    // (the harness leaves out lines that look like the kernel's: hence tr below)
    await login(m, how, 0);
    t.pass(how.autologin ? 'getty logged root in without a password' : 'logged in on the console with the password from the spec');

    const all = [...CATALOGUE, 'runsvdir-alice', 'sntp-server'];
    let r = await m.run(`sv -w 60 check ${all.join(' ')} >/dev/null; sv status ${all.join(' ')}`, { timeout: 120_000 });
    for (const s of CATALOGUE) t.match(r.output, new RegExp(`^run: ${s}: \\(pid \\d+\\) \\d+s; run: log: \\(pid \\d+\\) \\d+s$`, 'm'), `${s} and its logger run`);
    t.match(r.output, /^run: runsvdir-alice: /m, 'the user tree runs');
    r = await m.run('grep -c "^root:[$]6[$]" /etc/shadow; ls /etc/service/shell 2>&1 | grep -c "No such"');
    t.same(r.output.trim().split(/\s+/), [how.password ? '1' : '0', '1'], 'root has a SHA-512 password exactly when the spec gives one; no bare shell');

    // syslogd keeps what logger and the kernel (through klogd) say, through svlogd
    r = await m.run('logger -t cattest hello-syslog; echo "<7>cattest: hello-kmsg" > /dev/kmsg; sleep 2; grep -h -e hello-syslog -e hello-kmsg /etc/service/syslogd/log/main/current | tr "[]" "<>"');
    t.match(r.output, /user\.notice cattest: hello-syslog/, 'logger -> syslogd -> svlogd');
    t.match(r.output, /\.debug kernel: < *[\d.]+> cattest: hello-kmsg/, 'kernel -> klogd -> syslogd -> svlogd');

    // DHCP from QEMU's user network
    // (restrict=on: QEMU offers no router and no DNS server, there being nothing to reach)
    r = await m.run('cat /run/network/up; ip -4 addr show dev eth0; grep "network: bound" /etc/service/network/log/main/current');
    t.match(r.output, /^10\.0\.2\.15\/24$/m, 'the network service is ready with the lease');
    t.match(r.output, /inet 10\.0\.2\.15\/24 .*eth0/, 'eth0 has 10.0.2.15/24 by DHCP');
    t.match(r.output, /network: bound eth0 10\.0\.2\.15\/24 router none dns none lease \d+s/, 'the network log has the lease');

    // ntp: the clock stepped to the server's (the guest's own, 100 s ahead); the RTC gave the host's
    r = await m.run('for i in $(seq 30); do grep -q "clock stepped" /etc/service/ntp/log/main/current && break; sleep 1; done; grep -o "sntp: .*" /etc/service/ntp/log/main/current; echo "now $(date +%s)"', { timeout: 60_000 });
    const host = Date.now() / 1000;
    t.match(r.output, new RegExp(`sntp: 127\\.0\\.0\\.1:1123: offset \\+(?:${NTP_AHEAD - 1}|${NTP_AHEAD})\\.\\d+ s, delay \\d\\.\\d+ s, stratum 2\nsntp: clock stepped by (?:${NTP_AHEAD - 1}|${NTP_AHEAD})\\.\\d+ s`), 'ntp asked the server from the spec and stepped the clock');
    const guest = Number(/^now (\d+)$/m.exec(r.output)?.[1]);
    t.ok(Math.abs(guest - host - NTP_AHEAD) < 10, `the guest's clock is ${(guest - host).toFixed(1)} s ahead of the host's (${NTP_AHEAD} expected)`);

    // sshd: a login from the host through QEMU's forward, with the key from the spec
    const ssh = await execa('ssh', ['-i', key, '-p', String(port), '-o', 'BatchMode=yes', '-o', 'StrictHostKeyChecking=no', '-o', 'UserKnownHostsFile=/dev/null', '-o', 'ConnectTimeout=60', 'root@127.0.0.1', 'echo "ssh-ok $(id -un) $(uname -m)"'], { reject: false, all: true, timeout: 120_000 });
    t.match(ssh.all, new RegExp(`^ssh-ok root ${arch}$`, 'm'), 'ssh root@ with the spec\'s key runs a command');
    r = await m.run('grep -c "connection from" /etc/service/sshd/log/main/current; grep -c "_[0-9:.]* sshd: listening on port 22, host key AAAA" /etc/service/sshd/log/main/current');
    t.same(r.output.trim().split(/\s+/).map(Number).map((n) => n >= 1), [true, true], 'sshd logged its key and the connection');

    // alice runs and controls her own tree
    r = await m.run('ps -o user,args | grep "[r]unsvdir -P /home/alice"; sv status /home/alice/service/hello; chpst -u alice sv -w 20 restart /home/alice/service/hello && echo restarted-by-alice; sleep 1; cat /home/alice/service/hello/log/main/current; stat -c %U /home/alice/service/hello/supervise/status', { timeout: 60_000 });
    t.match(r.output, /^alice\s+.*runsvdir -P \/home\/alice\/service/m, 'runsvdir runs as alice');
    t.match(r.output, /^run: \/home\/alice\/service\/hello: \(pid \d+\) \d+s; run: log:/m, 'her service and its logger run');
    t.match(r.output, /^restarted-by-alice$/m, 'alice restarts her own service with sv');
    t.match(r.output, /^hello from alice\nhello from alice$/m, 'it ran as alice, twice, logged by her svlogd');
    t.match(r.output, /^alice$/m, 'alice owns its supervise directory');

    // crond runs root's job from the spec (at the next minute)
    r = await m.run('for i in $(seq 75); do test -s /tmp/cron.out && break; sleep 1; done; cat /tmp/cron.out; grep -c "cmd" /etc/service/crond/log/main/current', { timeout: 120_000 });
    t.match(r.output, /^cron ran as root\n[1-9]\d*$/m, 'crond ran the job and logged it');

    // runlevels: single stops everything but its own shell; the login shell goes with getty
    r = await m.run('readlink /etc/service; readlink /etc/runit/runsvdir/current; ls /etc/runit/runsvdir/single');
    t.same(r.output.trim().split(/\s+/), ['/etc/runit/runsvdir/current', 'default', 'shell'], '/etc/service -> current -> default; single has the shell');
    let mark = m.mark();
    await m.sendLine('runsvchdir single');
    const banner = await m.waitFor('built-in shell (ash)', { from: mark, timeout: 60_000 });
    await m.waitFor(PROMPT, { from: banner.end, timeout: 60_000 });
    r = await m.run('sleep 1; readlink /etc/runit/runsvdir/current; readlink /etc/runit/runsvdir/previous; sv status /etc/service/*; ps -o args | grep -c -e "[s]yslogd -n" -e "[c]rond -f" -e "[u]dhcpc -f" -e "[g]etty"', { timeout: 60_000 });
    t.match(r.output, /^single\ndefault\n/, 'current -> single, previous -> default');
    t.match(r.output, /^run: \/etc\/service\/shell: \(pid \d+\) \d+s$/m, 'the single runlevel runs its shell');
    t.match(r.output, /^0$/m, 'the default runlevel\'s services stopped');
    mark = m.mark();
    await m.sendLine('runsvchdir default');
    await login(m, how, mark);
    r = await m.run(`sv -w 60 check ${all.join(' ')} >/dev/null; sv status /etc/service/* | grep -c "^run: "; readlink /etc/runit/runsvdir/current`, { timeout: 120_000 });
    t.same(r.output.trim().split(/\s+/), [String(all.length), 'default'], 'back in default: every service up again, login on the console');

    mark = m.mark();
    await m.sendLine('init 0');
    const exit = await m.waitForExit({ timeout: 90_000 });
    t.equal(exit.reason, 'guest-shutdown', 'init 0 powers off');
    t.notMatch(m.console.slice(mark), /stage 3: kill:/, 'every service stopped on TERM');
  });
}
