# runit-ts: `make boot` builds and boots the default image in QEMU; `make test` runs every test.
SHELL := /bin/bash
HOSTARCH := $(shell uname -m)
ARCH ?= $(HOSTARCH)
ARCHES := x86_64 aarch64
export RUNIT_TS_CACHE ?= $(HOME)/.cache/runit-ts
NODE_ARCH := $(if $(filter aarch64,$(HOSTARCH)),aarch64,x86_64)
# every TypeScript step runs on the pinned Node (the same one the executables are made from)
NODE := $(RUNIT_TS_CACHE)/node-$(NODE_ARCH)/package/bin/node
CC_x86_64 := gcc
CC_aarch64 := aarch64-linux-gnu-gcc
STRIP_x86_64 := strip
STRIP_aarch64 := aarch64-linux-gnu-strip
COMPRESS ?= none
# image outputs (comma list): initramfs, disk, exedisk, tar, oci, docker (ARCH=all: both arches
# and the multi-arch out/oci/); every one is built by the image builder's front end. By
# default both boot layouts: exedisk (the executable on a read-only erofs disk), which
# `make boot` boots, its boot being the faster (docs/performance.md), and the initramfs
# image (everything in the initramfs: `make boot EXEDISK=none`, the boot tests)
OUTPUTS ?= initramfs,exedisk
# how `make boot` attaches the default image's executable disk: blk (virtio-blk), pmem
# (virtio-pmem with DAX, x86_64), or none: boot the initramfs layout instead
EXEDISK ?= blk
IMAGE_BUILD := $(NODE) image/cli.ts build --out out
comma := ,
OUTPUT_FILE_initramfs := initramfs.img
OUTPUT_FILE_disk := disk.img
OUTPUT_FILE_exedisk := exedisk.img
TS_SOURCES := $(shell find src stages -name '*.ts' 2>/dev/null)
IMAGE_SOURCES := $(shell find image services -type f 2>/dev/null)
SETUP_STAMP := out/.setup-stamp

.PHONY: all setup build image vm-image boot test typecheck unit test-host test-location test-boot test-container test-repro reliability bench repin clean help lib pack install deb
all: build

help:
	@echo "make boot        build and boot the default image in QEMU (ARCH=$(ARCH)): the executable on a read-only erofs disk; quit with Ctrl-a x"
	@echo "make test        typecheck, unit, host and boot tests on both arches"
	@echo "make test-location  the host tests that switch users, from a copy of the checkout in a 0700 directory"
	@echo "make setup       install Debian/npm packages and fetch the pinned inputs"
	@echo "make build       out/ARCH/runit-ts (single executable), runit-ts.node, runit (PID 1), early (the exedisk image's early stage)"
	@echo "make image       out/ARCH/{vmlinuz,exedisk.img,exe.erofs,initramfs.img,cmdline,runit-ts}; OUTPUTS=initramfs,disk,exedisk,tar,oci,docker (default initramfs,exedisk), ARCH=all (runit-ts-image build)"
	@echo "make image OUTPUTS=disk   out/ARCH/disk.img (GPT: ESP + ext4 root), root.ext4, early.img"
	@echo "make vm-image    out/harness/ARCH/{initramfs.img,vmlinuz,cmdline}: the harness image (guest agent, 9p)"
	@echo "make boot DISK=direct|uefi|uboot   boot out/ARCH/disk.img (uboot: aarch64 only)"
	@echo "make boot EXEDISK=blk|pmem|none   out/ARCH/exedisk.img with the executable's erofs disk on virtio-blk (the default) or virtio-pmem (x86_64); none: out/ARCH/initramfs.img, all in the initramfs"
	@echo "make test-container  podman/skopeo/umoci tests of the container images"
	@echo "make test-repro  reproducibility: each arch's code cache made again equals the executable's (part of make test)"
	@echo "make bench       benchmarks against Debian's runit"
	@echo "make lib         dist/: the npm package's JavaScript and type declarations"
	@echo "make pack        out/runit-ts-VERSION.tgz, the npm package"
	@echo "make install     beside another init: DESTDIR=, PREFIX=/usr/local (systemd unit, inittab line)"
	@echo "make deb         out/ARCH/runit-ts_VERSION_DEBARCH.deb (installs beside Debian's runit)"
	@echo "make reliability the reliability suite alone (part of make test), its figures; its long cases in full (test/reliability, about 15 minutes); and two clones built from nothing, compared byte for byte (about 5 minutes more)"
	@echo "make repin INPUT=id   move a pinned input (e.g. a replaced kernel) to what Debian serves now"

# scripts/setup is idempotent; the stamp only saves the half second it takes when nothing changed
$(SETUP_STAMP): scripts/setup scripts/inputs.ts image/inputs.json package.json package-lock.json
	scripts/setup
	@mkdir -p out && touch $@

setup:
	scripts/setup
	@mkdir -p out && touch $(SETUP_STAMP)

repin:
	@test -n "$(INPUT)" || { echo "usage: make repin INPUT=<id>|all  (ids: scripts/setup --list)"; exit 2; }
	scripts/setup --repin $(INPUT)

out/bundle/runit-ts.cjs: $(TS_SOURCES) scripts/build.ts $(SETUP_STAMP)
	$(NODE) scripts/build.ts bundle

# each arch's code cache is made by a training run of that arch's Node (the other arch's
# under qemu-user) with its addon, the same bytes at every build (scripts/code-cache.ts);
# the blob holds the loader, the bundle and the cache: named targets, so make keeps them
$(foreach a,$(ARCHES),out/bundle/runit-ts-$(a).cache): out/bundle/runit-ts-%.cache: out/bundle/runit-ts.cjs out/%/runit-ts.node scripts/build.ts scripts/code-cache.ts scripts/sea-train.cjs scripts/sea-loader.cjs
	$(NODE) scripts/build.ts cache $*

$(foreach a,$(ARCHES),out/bundle/sea-$(a).blob): out/bundle/sea-%.blob: out/bundle/runit-ts-%.cache scripts/sea-loader.cjs
	$(NODE) scripts/build.ts blob $*

out/%/runit-ts: out/bundle/sea-%.blob
	$(NODE) scripts/build.ts sea $*

# the addon's sources in a fixed order (the link order, so the same bytes from any checkout);
# only the module's registration is exported (-fvisibility=hidden)
NATIVE_SOURCES := $(addprefix src/native/,module.c napi-args.c files.c process.c system.c watch.c runtime.c)
out/%/runit-ts.node: $(NATIVE_SOURCES) src/native/napi-args.h $(SETUP_STAMP)
	@mkdir -p $(@D)
	$(CC_$*) -shared -fPIC -O2 -Wall -Wextra -fvisibility=hidden -I node_modules/node-api-headers/include -I $(RUNIT_TS_CACHE)/node-$*/package/include/node -o $@ $(NATIVE_SOURCES)
	$(STRIP_$*) --strip-unneeded $@

out/%/runit: image/runit.c image/prestart.c $(SETUP_STAMP)
	@mkdir -p $(@D)
	$(CC_$*) -static -Os -Wall -Wextra -o $@ image/runit.c image/prestart.c
	$(STRIP_$*) $@

# the overlay output's entry point (static: it needs no libc of the image it is added to)
out/%/launch: image/launch.c $(SETUP_STAMP)
	@mkdir -p $(@D)
	$(CC_$*) -static -Os -Wall -Wextra -o $@ $<
	$(STRIP_$*) $@

out/%/early: image/early.c $(SETUP_STAMP)
	@mkdir -p $(@D)
	$(CC_$*) -static -Os -Wall -Wextra -o $@ $<
	$(STRIP_$*) $@

# the early stage too: the default image (exedisk) starts with it
build: out/$(ARCH)/runit-ts out/$(ARCH)/runit-ts.node out/$(ARCH)/runit out/$(ARCH)/early

# a static pattern rule: the executables are named prerequisites, so make keeps them
# (a plain pattern rule would delete them as intermediate files once the image is built)
$(foreach a,$(ARCHES),out/$(a)/initramfs.img): out/%/initramfs.img: out/%/runit-ts out/%/runit-ts.node out/%/runit $(IMAGE_SOURCES)
	$(IMAGE_BUILD) --arch $* --outputs initramfs --compress $(COMPRESS)

$(foreach a,$(ARCHES),out/$(a)/disk.img): out/%/disk.img: out/%/runit-ts out/%/runit-ts.node out/%/runit $(IMAGE_SOURCES)
	$(IMAGE_BUILD) --arch $* --outputs disk

$(foreach a,$(ARCHES),out/$(a)/exedisk.img): out/%/exedisk.img: out/%/runit-ts out/%/runit-ts.node out/%/runit out/%/early $(IMAGE_SOURCES)
	$(IMAGE_BUILD) --arch $* --outputs exedisk

# the harness image (runit-ts/harness, runit-ts-vm): the default image's services plus the
# guest agent, and the modules it and 9p shares need (image/specs/harness.json)
$(foreach a,$(ARCHES),out/harness/$(a)/initramfs.img): out/harness/%/initramfs.img: out/%/runit-ts out/%/runit-ts.node out/%/runit $(IMAGE_SOURCES)
	$(NODE) image/cli.ts build image/specs/harness.json --arch $* --outputs initramfs --out out/harness --compress $(COMPRESS)

vm-image: out/harness/$(ARCH)/initramfs.img

OUTPUT_LIST := $(subst $(comma), ,$(OUTPUTS))
# what each arch needs built for OUTPUTS (exedisk: the early stage too)
IMAGE_BINARIES = $(foreach a,$(1),out/$(a)/runit-ts out/$(a)/runit-ts.node out/$(a)/runit $(if $(filter exedisk,$(OUTPUT_LIST)),out/$(a)/early) $(if $(filter overlay,$(OUTPUT_LIST)),out/$(a)/launch))
ifeq ($(ARCH),all)
image: $(call IMAGE_BINARIES,$(ARCHES))
	$(IMAGE_BUILD) --arch all --outputs $(OUTPUTS) --compress $(COMPRESS)
else ifeq ($(filter-out initramfs disk exedisk,$(OUTPUT_LIST)),)
# the boot images are files make keeps track of
image: $(foreach o,$(OUTPUT_LIST),out/$(ARCH)/$(OUTPUT_FILE_$(o)))
else
image: $(call IMAGE_BINARIES,$(ARCH))
	$(IMAGE_BUILD) --arch $(ARCH) --outputs $(OUTPUTS) --compress $(COMPRESS)
endif


BOOT_EXEDISK := $(filter-out none,$(EXEDISK))
boot: $(if $(DISK),out/$(ARCH)/disk.img,$(if $(BOOT_EXEDISK),out/$(ARCH)/exedisk.img,out/$(ARCH)/initramfs.img))
	$(NODE) scripts/boot.ts --arch $(ARCH) $(if $(DISK),--disk $(DISK),$(if $(BOOT_EXEDISK),--exedisk $(BOOT_EXEDISK)))

typecheck: $(SETUP_STAMP)
	node_modules/.bin/tsc --noEmit -p .

TAP := $(NODE) node_modules/.bin/tap
unit: $(SETUP_STAMP)
	$(TAP) test/unit/*.test.ts

# the install test packs a .deb for each arch. Two files at a time (tap's default on two
# cores is one), but the reliability cases, whose figures are timed, one at a time after
HOST_SUITES := $(wildcard test/host/*.test.ts)
HOST_TIMED := $(wildcard test/host/reliability-*.test.ts)
test-host: build $(foreach a,$(ARCHES),out/$(a)/runit-ts out/$(a)/runit-ts.node)
	RUNIT_TS_BIN=$(CURDIR)/out/$(HOSTARCH)/runit-ts RUNIT_TS_PID1=$(CURDIR)/out/$(HOSTARCH)/runit \
	  $(TAP) --jobs=2 $(filter-out $(HOST_TIMED),$(HOST_SUITES))
	RUNIT_TS_BIN=$(CURDIR)/out/$(HOSTARCH)/runit-ts RUNIT_TS_PID1=$(CURDIR)/out/$(HOSTARCH)/runit \
	  $(TAP) --jobs=1 $(HOST_TIMED)

# the host suites that switch users, run again from a copy of this checkout in a 0700 directory
test-location: build
	RUNIT_TS_BIN=$(CURDIR)/out/$(HOSTARCH)/runit-ts $(TAP) test/location/*.test.ts

test-boot: $(foreach a,$(ARCHES),out/$(a)/initramfs.img out/harness/$(a)/initramfs.img out/$(a)/runit-ts out/$(a)/runit-ts.node out/$(a)/runit out/$(a)/early)
	# one at a time: each QEMU needs a core of its own for the timing checks
	$(TAP) --jobs=1 test/boot/*.test.ts

# the container tests share one image pair, built from test/fixtures/container/spec.yaml
TEST_IMAGE := out/test-image/.built
$(TEST_IMAGE): $(foreach a,$(ARCHES),out/$(a)/runit-ts out/$(a)/runit-ts.node out/$(a)/runit out/$(a)/launch) $(IMAGE_SOURCES) $(wildcard test/fixtures/container/*)
	scripts/runit-ts-image build test/fixtures/container/spec.yaml --out out/test-image
	touch $@

# outputs.test.ts builds every output of one spec for x86_64, exedisk's early stage included
test-container: $(TEST_IMAGE) out/x86_64/early
	$(TAP) --jobs=1 test/container/*.test.ts

# reproducibility: each arch's code cache made again equals the one in this checkout's
# executable (about 30 s); the build from nothing in two clones is in make reliability
test-repro: $(foreach a,$(ARCHES),out/$(a)/runit-ts out/$(a)/runit-ts.node)
	$(TAP) --jobs=1 test/repro/code-cache.test.ts

# the one command CI runs
test: typecheck
	$(MAKE) unit
	$(MAKE) test-host ARCH=$(HOSTARCH)
	$(MAKE) test-location ARCH=$(HOSTARCH)
	$(MAKE) test-container
	$(MAKE) test-repro
	$(MAKE) test-boot

LIB_SOURCES := $(shell find src/control src/servicebuilder src/harness src/agent src/lib -name '*.ts' 2>/dev/null) src/index.ts
dist/index.js: $(LIB_SOURCES) tsconfig.build.json scripts/build.ts $(SETUP_STAMP)
	$(NODE) scripts/build.ts lib
lib: dist/index.js

pack: lib
	npm pack --ignore-scripts --pack-destination out

PREFIX ?= /usr/local
SYSCONFDIR ?= /etc
install: out/$(ARCH)/runit-ts out/$(ARCH)/runit-ts.node
	$(NODE) scripts/install.ts install --arch $(ARCH) --destdir "$(DESTDIR)" --prefix $(PREFIX) --sysconfdir $(SYSCONFDIR)

deb: out/$(ARCH)/runit-ts out/$(ARCH)/runit-ts.node
	$(NODE) scripts/install.ts deb --arch $(ARCH)

# the reliability suite alone (make test runs it too, the long cases with short counts):
# each case's figure and result
reliability: build $(foreach a,$(ARCHES),out/$(a)/initramfs.img)
	# two clones of the commit built from nothing (another directory, umask, time zone,
	# locale): byte-identical executables and images for both arches (about 5 minutes)
	$(TAP) --jobs=1 --timeout=3600 test/repro/clones.test.ts
	set -o pipefail; RUNIT_TS_BIN=$(CURDIR)/out/$(HOSTARCH)/runit-ts RUNIT_TS_PID1=$(CURDIR)/out/$(HOSTARCH)/runit \
	  $(TAP) test/host/reliability-*.test.ts | grep -E '^ *(# figure|not ok|ok [0-9]+ - test/)'
	# the long host cases, in full (make test runs a short count of each, in test/host):
	# 100,000 restarts and a day of rotations, 10,000 generated specs and templates (about
	# 15 minutes, one at a time)
	set -o pipefail; RUNIT_TS_BIN=$(CURDIR)/out/$(HOSTARCH)/runit-ts RUNIT_TS_PID1=$(CURDIR)/out/$(HOSTARCH)/runit \
	  $(TAP) --jobs=1 --timeout=3600 test/reliability/*.test.ts | grep -E '^ *(# figure|not ok|ok [0-9]+ - test/)'
	set -o pipefail; $(TAP) --jobs=1 test/boot/reliability-*.test.ts | grep -E '^ *(# figure|not ok|ok [0-9]+ - test/)'
	# the boot-level fault cases, both arches under TCG (one QEMU at a time): the supervisor
	# OOM-killed in its cgroup, and 20 power losses of the disk image while services log
	# through svlogd (RUNIT_TS_FAULT_CYCLES, RUNIT_TS_FAULT_SEED)
	set -o pipefail; $(TAP) --jobs=1 --timeout=3600 test/faults/*.test.ts | grep -E '^ *(# figure|not ok|ok [0-9]+ - test/)'
	# what is too long for every run (about 40 minutes): the Debian image's aarch64 direct
	# boot, its firmware boot paths and initramfs on both arches, its arm64 nginx container
	# and runit-ts's overlay on that Debian base, two builds of its lock per arch compared
	# byte for byte
	set -o pipefail; $(TAP) --jobs=1 --timeout=3600 test/long/*.test.ts | grep -E '^ *(# figure|not ok|ok [0-9]+ - test/)'

# the boot benchmark boots both arches: it builds its images from the executables (and the
# kernel image build copies)
bench: build $(foreach a,$(ARCHES),out/$(a)/initramfs.img out/$(a)/runit-ts.node out/$(a)/early)
	$(NODE) bench/run.ts $(if $(RUNS),--runs $(RUNS))

clean:
	rm -rf out
