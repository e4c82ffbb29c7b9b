// The image's users and groups: /etc/passwd and /etc/group from the spec's `users` and
// `groups` beside the built-in root, tty, nobody and nogroup, and how an owner
// ("user[:group]" or numbers) turns into a uid and gid.

export interface UserDef {
  name: string;
  uid: number;
  gid?: number;
  home?: string;
  shell?: string;
}
export interface GroupDef {
  name: string;
  gid: number;
  members?: string[];
}

/** Users every image has. */
export const BUILTIN_USERS: readonly UserDef[] = [
  { name: 'root', uid: 0, gid: 0 },
  { name: 'nobody', uid: 65534, gid: 65534 },
];
/** Groups every image has. */
export const BUILTIN_GROUPS: readonly GroupDef[] = [
  { name: 'root', gid: 0 },
  { name: 'tty', gid: 5 },
  { name: 'nogroup', gid: 65534 },
];

/** A user's home directory as the image holds it (no leading slash); "" or "nonexistent" for none. */
export function homeOf(u: UserDef): string {
  return (u.home ?? `/home/${u.name}`).replace(/^\/+/, '');
}

/** /etc/passwd: root, the spec's users, nobody. */
export function passwdText(users: readonly UserDef[]): string {
  const lines = ['root:x:0:0:root:/root:/bin/sh'];
  for (const u of users) lines.push(`${u.name}:x:${u.uid}:${u.gid ?? u.uid}:${u.name}:${u.home ?? `/home/${u.name}`}:${u.shell ?? '/bin/sh'}`);
  lines.push('nobody:x:65534:65534:nobody:/nonexistent:/bin/false');
  return lines.join('\n') + '\n';
}

/** /etc/group: root, tty, the spec's groups, a primary group for each user whose gid names none, nogroup. */
export function groupText(users: readonly UserDef[], groups: readonly GroupDef[]): string {
  const lines = ['root:x:0:', 'tty:x:5:'];
  const own = new Set(groups.map((g) => g.gid));
  for (const g of groups) lines.push(`${g.name}:x:${g.gid}:${(g.members ?? []).join(',')}`);
  for (const u of users) {
    const gid = u.gid ?? u.uid;
    if (!own.has(gid) && gid !== 0 && gid !== 65534) {
      lines.push(`${u.name}:x:${gid}:`);
      own.add(gid);
    }
  }
  lines.push('nogroup:x:65534:');
  return lines.join('\n') + '\n';
}

/** "uid:gid" or "name[:group]" -> numbers, from the built-in and the spec's users and groups; `fail` says what is unknown. */
export function resolveOwner(owner: string, users: readonly UserDef[], groups: readonly GroupDef[], fail: (m: string) => never): [number, number] {
  const [u, g] = owner.split(':') as [string, string | undefined];
  const allUsers = [...BUILTIN_USERS, ...users];
  const allGroups = [...BUILTIN_GROUPS, ...groups];
  let uid: number, gid: number;
  if (/^\d+$/.test(u)) {
    uid = Number(u);
    gid = allUsers.find((x) => x.uid === uid)?.gid ?? uid;
  } else {
    const user = allUsers.find((x) => x.name === u) ?? fail(`unknown user "${u}" (define it under users)`);
    uid = user.uid;
    gid = user.gid ?? user.uid;
  }
  if (g !== undefined) {
    if (/^\d+$/.test(g)) gid = Number(g);
    else gid = (allGroups.find((x) => x.name === g) ?? fail(`unknown group "${g}" (define it under groups)`)).gid;
  }
  return [uid, gid];
}
