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
TS_SOURCES := $(shell find src stages -name '*.ts' 2>/dev/null)
IMAGE_SOURCES := $(shell find image services -type f 2>/dev/null)
SETUP_STAMP := out/.setup-stamp

.PHONY: all setup build image boot test typecheck unit test-host test-boot reliability bench repin clean help
all: build

help:
	@echo "make boot        build and boot the default image in QEMU (ARCH=$(ARCH)); quit with Ctrl-a x"
	@echo "make test        typecheck, unit, host and boot tests on both arches"
	@echo "make setup       install Debian/npm packages and fetch the pinned inputs"
	@echo "make build       out/ARCH/runit-ts (single executable), runit-ts.node, runit (PID 1)"
	@echo "make image       out/ARCH/{vmlinuz,initramfs.img,cmdline,runit-ts}"
	@echo "make bench       benchmarks against Debian's runit"
	@echo "make reliability the reliability suite alone (part of make test), its figures"
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

out/%/runit-ts: out/bundle/runit-ts.cjs
	$(NODE) scripts/build.ts sea $*

out/%/runit-ts.node: src/native/runit-ts.c $(SETUP_STAMP)
	@mkdir -p $(@D)
	$(CC_$*) -shared -fPIC -O2 -Wall -Wextra -I node_modules/node-api-headers/include -o $@ $<
	$(STRIP_$*) --strip-unneeded $@

out/%/runit: image/runit.c $(SETUP_STAMP)
	@mkdir -p $(@D)
	$(CC_$*) -static -Os -Wall -Wextra -o $@ $<
	$(STRIP_$*) $@

build: out/$(ARCH)/runit-ts out/$(ARCH)/runit-ts.node out/$(ARCH)/runit

out/%/initramfs.img: out/%/runit-ts out/%/runit-ts.node out/%/runit $(IMAGE_SOURCES)
	$(NODE) image/build.ts --arch $* --compress $(COMPRESS)

image: out/$(ARCH)/initramfs.img

boot: image
	$(NODE) scripts/boot.ts --arch $(ARCH)

typecheck: $(SETUP_STAMP)
	node_modules/.bin/tsc --noEmit -p .

TAP := $(NODE) node_modules/.bin/tap
unit: $(SETUP_STAMP)
	$(TAP) test/unit/*.test.ts

test-host: build
	RUNIT_TS_BIN=$(CURDIR)/out/$(HOSTARCH)/runit-ts RUNIT_TS_PID1=$(CURDIR)/out/$(HOSTARCH)/runit \
	  $(TAP) test/host/*.test.ts

test-boot: $(foreach a,$(ARCHES),out/$(a)/initramfs.img)
	# one at a time: each QEMU needs a core of its own for the timing checks
	$(TAP) --jobs=1 test/boot/*.test.ts

# the one command CI runs
test: typecheck
	$(MAKE) unit
	$(MAKE) test-host ARCH=$(HOSTARCH)
	$(MAKE) test-boot

# the reliability suite alone (make test runs it too): each case's figure and result
reliability: build $(foreach a,$(ARCHES),out/$(a)/initramfs.img)
	set -o pipefail; RUNIT_TS_BIN=$(CURDIR)/out/$(HOSTARCH)/runit-ts RUNIT_TS_PID1=$(CURDIR)/out/$(HOSTARCH)/runit \
	  $(TAP) test/host/reliability-*.test.ts | grep -E '^ *(# figure|not ok|ok [0-9]+ - test/)'
	set -o pipefail; $(TAP) --jobs=1 test/boot/reliability-*.test.ts | grep -E '^ *(# figure|not ok|ok [0-9]+ - test/)'

bench: build image
	$(NODE) bench/run.ts

clean:
	rm -rf out
