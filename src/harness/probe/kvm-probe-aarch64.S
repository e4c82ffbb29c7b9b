/* KVM probe as an arm64 Linux Image (loaded with -kernel on -M virt):
   prints "K" on the PL011 at 0x09000000, touches 32 MiB of RAM, prints "X", then PSCI SYSTEM_OFF via HVC
   (QEMU then exits with status 0 under -no-reboot). Used only on aarch64 hosts (-accel kvm -cpu host).
   Build (the bytes are embedded in ../kvm.ts):
     aarch64-linux-gnu-as -o p.o kvm-probe-aarch64.S && aarch64-linux-gnu-objcopy -O binary -j .text p.o p.bin */
        .text
_head:
        b       start               /* code0 */
        .long   0                   /* code1 */
        .quad   0                   /* text_offset */
        .quad   _end - _head        /* image_size */
        .quad   0xa                 /* flags: LE, 4K, anywhere */
        .quad   0, 0, 0
        .ascii  "ARM\x64"           /* magic */
        .long   0
start:
        movz    x1, #0x0900, lsl #16
        mov     w2, #'K'
        strb    w2, [x1]
        adr     x3, _end
        movz    x5, #0x10, lsl #16
        add     x3, x3, x5  /* skip 1 MiB past the image (DTB lives elsewhere) */
        movz    x4, #0x200, lsl #16
        add     x4, x3, x4
1:      str     x3, [x3]
        add     x3, x3, #4096
        cmp     x3, x4
        b.lo    1b
        mov     w2, #'X'
        strb    w2, [x1]
        movz    x0, #0x8400, lsl #16
        movk    x0, #0x0008         /* PSCI_0_2_FN_SYSTEM_OFF */
        hvc     #0
2:      wfi
        b       2b
        .balign 16
_end:
