/* KVM probe firmware (-bios, 64 KiB image, this code in its last 4 KiB).
   The reset vector copies this 4 KiB page from its real-mode alias 0xFF000 to RAM at 0x8000 and runs it there:
   real mode -> 32-bit protected mode -> 64-bit long mode (PAE paging, 2 MiB pages identity-mapping 4 GiB),
   touches 64 MiB of RAM, executes lock cmpxchg16b, then writes 0x2a to isa-debug-exit (QEMU exit status 85).
   Progress on COM1: R (real mode), P (protected), L (long), M (memory), X (cmpxchg16b).
   Why these steps: on a nested paravirtual KVM (kvm_pvm) that cannot run normal kernels, the guest starts
   but crawls (touching 64 MiB takes ~0.4 s instead of a few ms) and QEMU then stops with
   "KVM internal error. Suberror: 1 ... emulation failure" at lock cmpxchg16b, which Linux executes early.
   Build (the bytes are embedded in ../kvm.ts; test/harness.test.ts checks they match when binutils exist):
     as --64 -o p.o kvm-probe-x86_64.S && objcopy -O binary -j .text p.o p.bin
   QEMU wants a -bios image whose size is a multiple of 64 KiB: kvm.ts pads p.bin in front to 64 KiB. */
        .set BASE, 0x8000
        .code16
        .org 0
start16:
        cli
        xorw %ax, %ax
        movw %ax, %ds
        movw %ax, %ss
        movw $0x7000, %sp
        movw $0x3f8, %dx
        movb $'R', %al
        outb %al, %dx
        lgdtl (BASE + gdtdesc - start16)
        movl %cr0, %eax
        orl $1, %eax
        movl %eax, %cr0
        ljmpl $0x08, $(BASE + start32 - start16)

        .code32
start32:
        movw $0x10, %ax
        movw %ax, %ds
        movw %ax, %es
        movw %ax, %ss
        movl $0x7000, %esp
        movw $0x3f8, %dx
        movb $'P', %al
        outb %al, %dx
        /* page tables at 0x10000: PML4 @0x10000, PDPT @0x11000, PD0..3 @0x12000..0x15000 */
        movl $0x10000, %edi
        xorl %eax, %eax
        movl $(6*4096/4), %ecx
        rep stosl
        movl $(0x11000 | 3), 0x10000
        movl $(0x12000 | 3), 0x11000
        movl $(0x13000 | 3), 0x11008
        movl $(0x14000 | 3), 0x11010
        movl $(0x15000 | 3), 0x11018
        movl $0x12000, %edi
        movl $0x83, %eax          /* present|rw|PS */
        xorl %edx, %edx
        movl $2048, %ecx
1:      movl %eax, (%edi)
        movl %edx, 4(%edi)
        addl $0x200000, %eax
        adcl $0, %edx
        addl $8, %edi
        loop 1b
        movl %cr4, %eax
        orl $0x20, %eax           /* PAE */
        movl %eax, %cr4
        movl $0x10000, %eax
        movl %eax, %cr3
        movl $0xC0000080, %ecx    /* EFER */
        rdmsr
        orl $0x100, %eax          /* LME */
        wrmsr
        movl %cr0, %eax
        orl $0x80000000, %eax
        movl %eax, %cr0
        ljmpl $0x18, $(BASE + start64 - start16)

        .code64
start64:
        movw $0x3f8, %dx
        movb $'L', %al
        outb %al, %dx
        movl $4, %r9d
2:      movq $0x1000000, %rdi
        movq $0x5000000, %rsi
3:      movq %rdi, (%rdi)
        addq $4096, %rdi
        cmpq %rsi, %rdi
        jb 3b
        decl %r9d
        jnz 2b
        movb $'M', %al
        outb %al, %dx
        movq $0x20000, %rdi
        xorl %eax, %eax
        xorl %edx, %edx
        movq $1, %rbx
        movq $2, %rcx
        movq %rax, (%rdi)
        movq %rax, 8(%rdi)
        lock cmpxchg16b (%rdi)
        movw $0x3f8, %dx
        movb $'X', %al
        outb %al, %dx
        movb $0x2a, %al
        outb %al, $0xf4
4:      hlt
        jmp 4b

        .balign 8
gdt:
        .quad 0
        .quad 0x00CF9A000000FFFF  /* 0x08 code32 */
        .quad 0x00CF92000000FFFF  /* 0x10 data */
        .quad 0x00AF9A000000FFFF  /* 0x18 code64 */
gdtdesc:
        .word gdtdesc - gdt - 1
        .long BASE + gdt - start16

        .code16
copy:   /* entered from the reset vector: copy 4 KiB F000:F000 -> 0000:8000 */
        cli
        cld
        movw $0xF000, %ax
        movw %ax, %ds
        movw $0xF000, %si
        xorw %ax, %ax
        movw %ax, %es
        movw $BASE, %di
        movw $2048, %cx
        rep movsw
        ljmp $0x0000, $BASE

code_end:
        .org 4096 - 16
reset:
        ljmp $0xF000, $(0xF000 + copy - start16)
        .org 4096
