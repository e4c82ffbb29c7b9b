// djb's error_str() wording, which runit prints after "unable to ...: ".
const STR: Record<string, string> = {
  EINTR: 'interrupted system call',
  ENOMEM: 'out of memory',
  ENOENT: 'file does not exist',
  ETXTBSY: 'text busy',
  EIO: 'input/output error',
  EEXIST: 'file already exists',
  ETIMEDOUT: 'timed out',
  EINPROGRESS: 'operation in progress',
  EAGAIN: 'temporary failure',
  EWOULDBLOCK: 'input/output would block',
  EPIPE: 'broken pipe',
  EPERM: 'permission denied',
  EACCES: 'access denied',
  ENXIO: 'device not configured',
  EPROTO: 'protocol error',
  EISDIR: 'is a directory',
  ESRCH: 'no such process',
  E2BIG: 'argument list too long',
  ENOEXEC: 'exec format error',
  EBADF: 'file descriptor not open',
  ECHILD: 'no child processes',
  EDEADLK: 'operation would cause deadlock',
  EFAULT: 'bad address',
  ENOTBLK: 'not a block device',
  EBUSY: 'device busy',
  EXDEV: 'cross-device link',
  ENODEV: 'device does not support operation',
  ENOTDIR: 'not a directory',
  EINVAL: 'invalid argument',
  ENFILE: 'system cannot open more files',
  EMFILE: 'process cannot open more files',
  ENOTTY: 'not a tty',
  EFBIG: 'file too big',
  ENOSPC: 'out of disk space',
  ESPIPE: 'unseekable descriptor',
  EROFS: 'read-only file system',
  EMLINK: 'too many links',
  EDOM: 'input out of range',
  ERANGE: 'output out of range',
  ELOOP: 'too many symbolic links',
  ENAMETOOLONG: 'file name too long',
  ENOTEMPTY: 'directory not empty',
  ENOSYS: 'operation not supported',
  ECONNREFUSED: 'connection refused',
  EADDRINUSE: 'address already used',
};

/** runit's text for an error (a Node error with .code, or a code string). */
export function errorStr(e: unknown): string {
  const code = typeof e === 'string' ? e : (e as { code?: string } | null)?.code;
  if (code && STR[code]) return STR[code];
  if (code) return `error ${code}`;
  return e instanceof Error ? e.message : String(e);
}
