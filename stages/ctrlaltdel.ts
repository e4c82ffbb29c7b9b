// /etc/runit/ctrlaltdel: runit runs this on ctrl-alt-del (SIGINT), then shuts down if
// it left an executable stopit file. Ours reboots, the usual meaning of the keys.
import { request } from '../src/init/main.ts';

export const HELP = `usage: /etc/runit/ctrlaltdel

Run by runit on ctrl-alt-del: announces the reboot on the console and asks for
it (as 'init 6': creates the stopit and reboot files). Edit the image's
/etc/runit/ctrlaltdel to change that.
`;

export function main(argv: string[]): number {
  if (argv[0] === '--help') {
    process.stdout.write(HELP);
    return 0;
  }
  process.stdout.write('ctrlaltdel: the system is going down for reboot NOW\n');
  // runit shuts down after this script if the stopit file is there: no CONT needed
  return request(true);
}
