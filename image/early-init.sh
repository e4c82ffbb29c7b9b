#!/bin/busybox sh
# /init of the early initramfs of a disk image: load the block and file system modules,
# wait for the root device named on the kernel command line, check it, mount it and hand
# over to /sbin/runit on it as PID 1 (switch_root empties this initramfs).
# A busybox script rather than an applet of runit-ts: it needs no Node (so the early
# initramfs stays ~4 MiB and the first Node start happens once, in stage 1).
#
# Command line: root=PARTUUID=<uuid> | root=UUID=<uuid> | root=LABEL=<l> | root=/dev/vdaN
#   rootfstype=ext4|erofs|...   rootflags=...   ro | rw (default ro)
#   rootwait[=SECONDS] (default 30; 0 waits forever)   rootdelay=SECONDS
#   fsck.mode=auto|force|skip (default auto: e2fsck -p, which replays the journal and
#   checks only when the file system says so)   init=/sbin/runit   early.shell (a shell first)
#   root.overlay=tmpfs: the root (e.g. a read-only erofs) becomes the lower layer of an
#   overlay whose upper layer is a tmpfs: the system can write, nothing reaches the disk
#   early.mount=DEV:DIR[:FSTYPE[:OPTS]] (may repeat; OPTS default ro): mount DEV on DIR,
#   under the root once it is mounted. Without root= the initramfs itself is the root:
#   the mounts are made in it and $init runs on it (no switch_root); this is how the
#   exedisk image gets its executable from a read-only disk (image/packers/exedisk.ts)
#   early.modules=NAME: load the modules listed in /lib/modules/NAME (default load-order)
#   early.ra=KB: the read-ahead (and mmap read-around) window of the early.mount devices
# When the root never appears or cannot be mounted: a rescue shell on the console;
# leaving it retries.
PATH=/bin:/sbin
export PATH

say() { echo "early: $*" > /dev/console; }

/bin/busybox mkdir -p /proc /sys /dev /newroot
/bin/busybox mount -t proc proc /proc
/bin/busybox mount -t sysfs sysfs /sys
/bin/busybox mount -t devtmpfs -o mode=0755 devtmpfs /dev 2>/dev/null
exec < /dev/console > /dev/console 2>&1

root= fstype= flags= mode=ro wait=30 delay=0 fsck=auto init=/sbin/runit shell= overlay= mounts= modlist=load-order ra=
for w in $(cat /proc/cmdline); do
	case "$w" in
	root=*) root=${w#root=} ;;
	rootfstype=*) fstype=${w#rootfstype=} ;;
	rootflags=*) flags=${w#rootflags=} ;;
	ro) mode=ro ;;
	rw) mode=rw ;;
	rootwait) wait=30 ;;
	rootwait=*) wait=${w#rootwait=} ;;
	rootdelay=*) delay=${w#rootdelay=} ;;
	fsck.mode=*) fsck=${w#fsck.mode=} ;;
	init=*) init=${w#init=} ;;
	early.shell) shell=1 ;;
	root.overlay=*) overlay=${w#root.overlay=} ;;
	early.mount=*) mounts="$mounts ${w#early.mount=}" ;;
	early.modules=*) modlist=${w#early.modules=} ;;
	early.ra=*) ra=${w#early.ra=} ;;
	esac
done

rescue() {
	say "$*"
	say "rescue shell: fix things up and exit to try again (poweroff -f, reboot -f)"
	setsid cttyhack sh -l
}

# modules in dependency order, as listed by the image builder
if [ -f "/lib/modules/$modlist" ]; then
	while read -r m; do
		[ -n "$m" ] && insmod "/lib/modules/$m" 2>/dev/null
	done < "/lib/modules/$modlist"
fi
[ -n "$shell" ] && rescue "early.shell on the command line"

# early.mount= words, under $1 (the new root, or empty for the initramfs itself); a device
# that does not appear within rootwait's time, or does not mount, opens the rescue shell
early_mounts() {
	for m in $mounts; do
		set -f
		oldifs=$IFS IFS=:
		set -- "$1" $m
		IFS=$oldifs
		set +f
		mdev=$2 mdir=$1$3 mt=$4 mo=${5:-ro}
		while :; do
			i=0
			while [ ! -b "$mdev" ]; do
				i=$((i + 1))
				if [ "$wait" -gt 0 ] && [ "$i" -ge $((wait * 10)) ]; then break; fi
				usleep 100000
			done
			[ -n "$ra" ] && [ -b "$mdev" ] && blockdev --setra $((ra * 2)) "$mdev"
			if [ ! -b "$mdev" ]; then
				rescue "$mdev (early.mount) did not appear within $wait s (modules loaded: $(cut -d' ' -f1 /proc/modules | tr '\n' ' '))"
			elif mount ${mt:+-t "$mt"} -o "$mo" "$mdev" "$mdir"; then
				break
			else
				rescue "unable to mount $mdev on $mdir (${mt:-auto}, $mo)"
			fi
		done
		set -- "${1}"
	done
}

# no root=, but mounts: the initramfs stays the root
if [ -z "$root" ] && [ -n "$mounts" ]; then
	early_mounts ""
	umount /proc /sys
	# the console stays open on it: detach it, stage 1 mounts its own
	umount -l /dev 2>/dev/null
	exec "$init"
fi

# A GPT partition's unique GUID, found by reading the partition table (busybox has no
# PARTUUID lookup): 128 entries of 128 bytes at LBA 2, the GUID at byte 16 of each, its
# first three fields little-endian.
partuuid_dev() {
	want=$(echo "$1" | tr 'A-F' 'a-f')
	for sys in /sys/block/*; do
		disk=${sys##*/}
		case "$disk" in loop*|ram*) continue ;; esac
		ss=$(cat "$sys/queue/logical_block_size" 2>/dev/null || echo 512)
		[ "$(dd if=/dev/$disk bs=1 skip=$ss count=8 2>/dev/null)" = "EFI PART" ] || continue
		n=0
		dd if=/dev/$disk bs=$ss skip=2 count=$((16384 / ss)) 2>/dev/null | hexdump -v -e '128/1 "%02x" "\n"' |
		while read -r e; do
			n=$((n + 1))
			g=${e:32:32}
			u=${g:6:2}${g:4:2}${g:2:2}${g:0:2}-${g:10:2}${g:8:2}-${g:14:2}${g:12:2}-${g:16:4}-${g:20:12}
			if [ "$u" = "$want" ]; then
				case "$disk" in *[0-9]) echo "/dev/${disk}p$n" ;; *) echo "/dev/$disk$n" ;; esac
				break
			fi
		done
	done
}

resolve() {
	case "$root" in
	PARTUUID=*) partuuid_dev "${root#PARTUUID=}" ;;
	UUID=*|LABEL=*) findfs "$root" 2>/dev/null ;;
	/dev/*) [ -b "$root" ] && echo "$root" ;;
	esac
}

[ "$delay" -gt 0 ] 2>/dev/null && sleep "$delay"
while :; do
	if [ -z "$root" ]; then
		rescue "no root= on the kernel command line"
		continue
	fi
	say "waiting for root device $root"
	i=0 dev=
	while :; do
		dev=$(resolve)
		[ -n "$dev" ] && [ -b "$dev" ] && break
		i=$((i + 1))
		if [ "$wait" -gt 0 ] && [ "$i" -ge $((wait * 10)) ]; then
			dev=
			break
		fi
		usleep 100000
	done
	if [ -z "$dev" ]; then
		rescue "root device $root did not appear within $wait s (modules loaded: $(cut -d' ' -f1 /proc/modules | tr '\n' ' '))"
		continue
	fi
	t=$fstype
	# no rootfstype=: the ext2/3/4 magic (0xef53 at byte 1080) says whether e2fsck applies
	[ -z "$t" ] && [ "$(dd if="$dev" bs=1 skip=1080 count=2 2>/dev/null | hexdump -e '2/1 "%02x"')" = 53ef ] && t=ext4
	case "$t:$fsck" in
	*:skip) ;;
	ext[234]:*)
		say "checking $dev"
		if [ "$fsck" = force ]; then e2fsck -f -p "$dev"; else e2fsck -p "$dev"; fi
		rc=$?
		if [ $rc -ge 4 ]; then
			rescue "e2fsck -p $dev failed (exit $rc): run e2fsck $dev by hand"
			continue
		fi
		[ $rc -ne 0 ] && say "e2fsck repaired $dev (exit $rc)"
		;;
	esac
	opts=$mode
	[ -n "$flags" ] && opts=$opts,$flags
	say "mounting $dev on / (${t:-auto}, $opts)"
	if mount ${t:+-t "$t"} -o "$opts" "$dev" /newroot; then
		if [ "$overlay" = tmpfs ]; then
			say "overlay: $dev read-only below, tmpfs above"
			mkdir -p /lower /upper
			mount --move /newroot /lower
			mount -t tmpfs -o mode=0755 tmpfs /upper && mkdir -p /upper/data /upper/work &&
				mount -t overlay -o lowerdir=/lower,upperdir=/upper/data,workdir=/upper/work overlay /newroot ||
				{ umount /upper; umount /lower; rescue "unable to mount the tmpfs overlay on $dev"; continue; }
		fi
		if [ -x "/newroot$init" ] || [ -L "/newroot$init" ]; then
			[ -n "$mounts" ] && early_mounts /newroot
			break
		fi
		umount /newroot
		[ "$overlay" = tmpfs ] && { umount /upper; umount /lower; }
		rescue "no $init on $dev"
	else
		rescue "unable to mount $dev (${t:-auto}, $opts)"
	fi
done

say "switching to $dev, $init"
umount /proc /sys
umount /dev 2>/dev/null
exec switch_root /newroot "$init"
