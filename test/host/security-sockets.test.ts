// Security: the supervisor's unix sockets are never reachable by another user, not even
// for the moment between bind() and a chmod(). bind() makes a socket 0777 & ~umask; the
// supervisor here runs with umask 000 in a tree every user may enter, the worst case.
//  - SCANDIR/.events (the event stream): 0600, root's, from its first moment. A program
//    running as nobody tries to connect in a tight loop (a few microseconds a try) while
//    the supervisor starts, several times over: never once connected.
//  - supervise/notify (a service's NOTIFY_SOCKET), in a supervise/ that is a symlink to a
//    directory every user can enter: 0600, the supervisor's user's; nobody's datagrams
//    (a READY=1 among them) are refused, while the service's own READY=1 is taken.
// The loop is a small C program (gcc, as the addon is built with): a Node process, or our
// executable, would try a thousand times more slowly.
import t from 'tap';
import { chmodSync, existsSync, lstatSync, mkdirSync, readdirSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { execa } from 'execa';
import { BIN, haveBin, processTempDir, until } from '../lib/host.ts';
import { pidIn } from '../lib/runit.ts';
import { readStats } from '../../src/lib/supervise.ts';
import { serviceDir, sh, sleep, supervisor } from '../lib/reliability.ts';

if (!haveBin()) t.fail(`${BIN} is missing: run make build`);

/** supervisor starts raced, and how long each race runs (ms) */
const STARTS = 5;
const RACE_MS = 2500;
const NOBODY = 65534;

const PROBE_C = String.raw`
/* probe race stream|dgram PATH MS: connect (stream) or send READY=1 (dgram) to PATH as
 * fast as possible for MS ms; prints "ok=N refused=N absent=N other=N lasterr=ERRNO".
 * probe send PATH TEXT: one datagram; exit 0 when sent. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>
static double now(void) { struct timespec ts; clock_gettime(CLOCK_MONOTONIC, &ts); return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6; }
int main(int argc, char **argv) {
  if (argc < 4) return 2;
  int send = !strcmp(argv[1], "send");
  if (!send && argc < 5) return 2;
  struct sockaddr_un sa; memset(&sa, 0, sizeof sa); sa.sun_family = AF_UNIX;
  strncpy(sa.sun_path, argv[send ? 2 : 3], sizeof sa.sun_path - 1);
  if (send) {
    int fd = socket(AF_UNIX, SOCK_DGRAM, 0);
    return sendto(fd, argv[3], strlen(argv[3]), 0, (struct sockaddr *)&sa, sizeof sa) < 0;
  }
  int dgram = !strcmp(argv[2], "dgram");
  long ok = 0, refused = 0, absent = 0, other = 0, lasterr = 0;
  double end = now() + atof(argv[4]);
  int fd = dgram ? socket(AF_UNIX, SOCK_DGRAM, 0) : -1;
  while (now() < end) {
    int r;
    if (dgram) r = sendto(fd, "READY=1", 7, 0, (struct sockaddr *)&sa, sizeof sa);
    else { fd = socket(AF_UNIX, SOCK_STREAM, 0); r = connect(fd, (struct sockaddr *)&sa, sizeof sa); }
    if (r >= 0) ok++; else if (errno == EACCES || errno == EPERM) refused++; else if (errno == ENOENT) absent++; else { other++; lasterr = errno; }
    if (!dgram) close(fd);
  }
  printf("ok=%ld refused=%ld absent=%ld other=%ld lasterr=%ld\n", ok, refused, absent, other, lasterr);
  return 0;
}
`;

/** The probe, compiled into a directory every user may enter. */
async function probe(): Promise<string> {
  const dir = processTempDir('runit-ts-probe-');
  chmodSync(dir, 0o755);
  writeFileSync(join(dir, 'probe.c'), PROBE_C);
  await execa('gcc', ['-O2', '-o', join(dir, 'probe'), join(dir, 'probe.c')]);
  return join(dir, 'probe');
}

/** Run the probe as nobody; its counts. */
async function race(bin: string, kind: 'stream' | 'dgram', path: string, ms: number): Promise<Record<string, number>> {
  const r = await execa('setpriv', [`--reuid=${NOBODY}`, `--regid=${NOBODY}`, '--clear-groups', bin, 'race', kind, path, String(ms)]);
  return Object.fromEntries(r.stdout.trim().split(' ').map((kv) => kv.split('=')).map(([k, v]) => [k!, Number(v)]));
}

/** A socket's type and mode bits, and owner. */
function sock(path: string): { socket: boolean; mode: string; uid: number } {
  const st = lstatSync(path);
  return { socket: st.isSocket(), mode: (st.mode & 0o7777).toString(8), uid: st.uid };
}

const UMASK0 = ['sh', '-c', 'umask 000 && exec "$@"', 'sh'];

t.test('the events socket: 0600 from its first moment, never reachable by another user', { skip: process.getuid?.() !== 0 ? 'needs root (runs a probe as nobody)' : false }, async (t) => {
  const bin = await probe();
  const totals = { ok: 0, refused: 0, absent: 0, other: 0 };
  for (let i = 0; i < STARTS; i++) {
    const sup = supervisor(t, (tr) => {
      chmodSync(tr.root, 0o755);
      serviceDir(join(tr.sv, 'a'), { run: sh('exec sleep 100000') });
    }, 'runit-ts-sec-events-', {}, UMASK0);
    const path = join(sup.tr.sv, '.events');
    // the race starts before the supervisor is far enough to bind (it needs ~100 ms)
    const r = await race(bin, 'stream', path, RACE_MS);
    for (const k of Object.keys(totals) as Array<keyof typeof totals>) totals[k] += r[k] ?? 0;
    t.ok(r.refused! > 0, `start ${i + 1}: the socket was there during the race (${JSON.stringify(r)})`);
    t.same(sock(path), { socket: true, mode: '600', uid: 0 }, `start ${i + 1}: .events is a socket, 0600, root's`);
    t.same(readdirSync(sup.tr.sv).filter((f) => f.startsWith('.ev') && f !== '.events'), [], 'no temporary directory left in the scan directory');
    await sup.stop();
  }
  t.equal(totals.ok, 0, `nobody never connected: ${totals.ok} of ${totals.ok + totals.refused + totals.absent + totals.other} tries`);
  t.comment(`figure: events socket under umask 000, ${STARTS} supervisor starts raced by nobody: ${totals.ok} connects of ${totals.ok + totals.refused + totals.absent + totals.other} tries (${totals.refused} refused, ${totals.absent} before it existed)`);
});

t.test('a service\'s NOTIFY_SOCKET: 0600, the supervisor\'s user\'s; another user\'s READY=1 refused', { skip: process.getuid?.() !== 0 ? 'needs root (runs a probe as nobody)' : false }, async (t) => {
  const bin = await probe();
  // the service says READY=1 itself two seconds in, through the probe (as root)
  const sup = supervisor(t, (tr) => {
    chmodSync(tr.root, 0o755);
    serviceDir(join(tr.sv, 'n'), { run: sh(`sleep 2\n${bin} send "$NOTIFY_SOCKET" READY=1\nexec sleep 100000`), 'notify-socket': '' });
    // supervise/ where every user can enter (runit allows it to be a symlink)
    mkdirSync(join(tr.root, 'sup-n'), { mode: 0o755 });
    chmodSync(join(tr.root, 'sup-n'), 0o755);
    symlinkSync(join(tr.root, 'sup-n'), join(tr.sv, 'n', 'supervise'));
  }, 'runit-ts-sec-notify-', {}, UMASK0);
  const { tr } = sup;
  const path = join(tr.root, 'sup-n', 'notify');
  const r = await race(bin, 'dgram', path, 1500);
  t.equal(r.ok, 0, `nobody's READY=1 never sent: ${JSON.stringify(r)}`);
  t.ok(r.refused! > 0, 'refused while the socket was there');
  t.same(sock(path), { socket: true, mode: '600', uid: 0 }, 'supervise/notify is a socket, 0600, root\'s');
  t.equal(readStats(join(tr.sv, 'n'))?.ready ?? null, null, 'not ready on nobody\'s word');
  await until(() => readStats(join(tr.sv, 'n'))?.ready?.how === 'notify-socket', 5000, 'ready').catch(() => undefined);
  t.equal(readStats(join(tr.sv, 'n'))?.ready?.how, 'notify-socket', 'ready on the service\'s own READY=1');
  t.equal(readStats(join(tr.sv, 'n'))?.ready?.pid, pidIn(join(tr.sv, 'n', 'supervise')), 'ready: the service\'s process');
  await sleep(100);
  t.same(readdirSync(join(tr.root, 'sup-n')).filter((f) => f.startsWith('.notify')), [], 'no temporary directory left');
  t.comment(`figure: NOTIFY_SOCKET in a supervise/ every user can enter, umask 000: nobody's ${r.ok! + r.refused! + r.absent! + r.other!} datagrams, ${r.ok} taken; the service's own READY=1 taken`);
});

t.test('notify-socket naming a user: the socket is that user\'s, 0600; the service run as that user is ready; an unknown user is one line', { skip: process.getuid?.() !== 0 ? 'needs root (runs the service as nobody)' : false }, async (t) => {
  const bin = await probe();
  const asNobody = `setpriv --reuid=${NOBODY} --regid=${NOBODY} --clear-groups`;
  const sup = supervisor(t, (tr) => {
    chmodSync(tr.root, 0o755);
    chmodSync(tr.sv, 0o755);
    // the service drops root before it says READY=1, as a daemon run through chpst -u does
    serviceDir(join(tr.sv, 'u'), { run: sh(`exec ${asNobody} sh -c 'sleep 1; ${bin} send "$NOTIFY_SOCKET" READY=1 || echo SEND-REFUSED; exec sleep 100000'`), 'notify-socket': 'nobody\n' });
    serviceDir(join(tr.sv, 'x'), { run: sh('exec sleep 100000'), 'notify-socket': 'no-such-user-runit-ts\n' });
    // supervise/ is 0700 (as runit makes it): the user reaches the socket through a link to a directory it may search
    mkdirSync(join(tr.root, 'sup-u'));
    chmodSync(join(tr.root, 'sup-u'), 0o711);
    symlinkSync(join(tr.root, 'sup-u'), join(tr.sv, 'u', 'supervise'));
  }, 'runit-ts-sec-notify-user-', {}, UMASK0);
  const { tr, bg } = sup;
  const path = join(tr.root, 'sup-u', 'notify');
  // the socket is there until the service is ready (it says so a second in)
  await until(() => existsSync(path), 5000, 'supervise/notify').catch(() => undefined);
  t.same(existsSync(path) ? sock(path) : null, { socket: true, mode: '600', uid: NOBODY }, 'supervise/notify is a socket, 0600, nobody\'s');
  await until(() => readStats(join(tr.sv, 'u'))?.ready?.how === 'notify-socket', 8000, 'ready').catch(() => undefined);
  t.equal(readStats(join(tr.sv, 'u'))?.ready?.how, 'notify-socket', 'ready on READY=1 sent as nobody');
  t.notMatch(bg.output(), /SEND-REFUSED/, 'the service\'s datagram was taken');
  t.match(bg.output(), /unable to create supervise\/notify: .*unknown user 'no-such-user-runit-ts'/, 'an unknown user: one line naming it');
  t.equal(readStats(join(tr.sv, 'x'))?.ready ?? null, null, 'and that service is not taken for ready');
});
