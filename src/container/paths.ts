// Where container-init keeps its state, shared by container-init and the image builder
// (image/rootfs.ts bakes the supervise links into container images). As Debian does for
// runit on a read-only root, a container image's /etc/sv/NAME/supervise is a symlink to
// /run/runit-ts/supervise/NAME (log/supervise to NAME.log): container-init makes
// /run/runit-ts/supervise at start, the supervisor makes the link's target.

/** container-init's default state directory (RUNIT_TS_STATE). */
export const DEFAULT_STATE = '/run/runit-ts';
/** The directory of the state directory the supervise links point into. */
export const SUPERVISE_SUBDIR = 'supervise';

/** The target of a container image's NAME/supervise link (`log`: NAME/log/supervise's). */
export function superviseLinkTarget(name: string, log: boolean): string {
  return `${DEFAULT_STATE}/${SUPERVISE_SUBDIR}/${name}${log ? '.log' : ''}`;
}
