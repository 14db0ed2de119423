# SPDX-License-Identifier: GPL-2.0
#
# dm-stream: out-of-tree build, install and test entry points.
#
#   make                 build dm-stream/dm-stream.ko (and tools/dmstream when
#                        tools/Makefile exists)
#   make KDIR=<dir>      build against another kernel build tree
#   make W=1 / make C=2  extra warnings / run sparse (passed on to kbuild)
#   make install         install the module under extra/, the tool under
#                        $(PREFIX)/sbin and its man page under
#                        $(PREFIX)/share/man/man8, and the boot integration
#                        (tools/Makefile install-boot: the systemd generator
#                        in $(PREFIX)/lib/systemd/system-generators,
#                        dmstreamtab(5), an example /etc/dmstreamtab when
#                        there is none); honours DESTDIR, INSTALL_MOD_PATH,
#                        SYSCONFDIR and SYSTEMD_GENERATOR_DIR
#   make deps            install Debian packages and fetch the guest kernel
#   make check [T=name]  boot a QEMU guest once and run the selftests
#                        (T=test_module_01 runs one test; TIMEOUT=<s> sets the
#                        overall guest timeout)
#   make check KERNEL=debug [T=name]
#                        the same on a debug kernel (KASAN, lockdep,
#                        kmemleak, debug objects), with a kmemleak scan after
#                        the tests; the kernel is built once by
#                        scripts/debug-kernel.sh (92 min here, on 2 busy
#                        cores) and cached in
#                        $DMSTREAM_CACHE (/var/cache/dm-stream); the module
#                        is built against it in build-debug/
#   make check KVER=<name> [T=name]
#                        the same booting another Debian kernel: KVER=6.12
#                        (bookworm-security's 6.12), KVER=rt (6.1 PREEMPT_RT),
#                        KVER=6.12-rt, KVER=6.1 or a release such as
#                        6.12.117+deb12-amd64; scripts/kernels.sh installs
#                        its headers and caches its image in
#                        $DMSTREAM_CACHE like the stock one; the module is
#                        built against it in build-<KVER>/
#   make fuzz [SEED=n]   boot a QEMU guest once and run the fuzz and soak
#                        selftests (selftests/test_fuzz_*, test_soak_*) at full
#                        counts: 500 table lines, 300 messages, 1000 corrupted
#                        metadata images, a 300 s soak; SEED=n reproduces a
#                        run, TIMEOUT=<s> sets the guest timeout (default 7200)
#   make lint            static checks: the docs against stream-interface.h,
#                        shellcheck, checkpatch --strict and sparse
#                        (scripts/lint.sh)
#   make demo            boot a QEMU guest and live-copy a mounted ext4 volume
#                        with `dmstream copy --finish` (tools/demo.sh)
#   make bench [BENCH_ARGS="--size 512 ..."]
#                        stream in a guest beside dm-clone, dd and linear;
#                        tables in bench/out/ (see bench/README.md)
#   make clean

SHELL := /bin/bash

# The ABI that Debian's linux-headers-amd64 points at. The guest boots this
# kernel, so `make check` always builds against its headers.
DEBIAN_ABI = $(shell scripts/deps.sh --abi 2>/dev/null)
DEBIAN_KDIR = $(if $(DEBIAN_ABI),/usr/src/linux-headers-$(DEBIAN_ABI))

RUNNING_KDIR := /lib/modules/$(shell uname -r)/build
KDIR ?= $(if $(wildcard $(RUNNING_KDIR)),$(RUNNING_KDIR),$(DEBIAN_KDIR))

PREFIX ?= /usr/local
DESTDIR ?=
INSTALL_MOD_PATH ?= $(DESTDIR)
INSTALL_MOD_DIR ?= extra

HAVE_TOOLS := $(wildcard tools/Makefile)

# make check KERNEL=debug: the module is built against the debug kernel in
# DEBUG_BUILD (links to the sources), so dm-stream/ keeps the stock build.
# KASAN under TCG makes a run several times slower: DEBUG_TIMEOUT is the
# guest's overall timeout unless TIMEOUT is given, and each test's timeout
# (selftests/settings) is multiplied by DEBUG_TIMEOUT_SCALE. Kernel
# arguments: no5lvl avoids a KASAN report at boot under -cpu max;
# kasan_multi_shot prints every KASAN report, not only the first;
# acpi=noirq spares the boot ACPI's _PRT method, which the ACPI
# interpreter, slowed down by KASAN under TCG, ran into its 30 s loop
# timeout ("AE_AML_LOOP_TIMEOUT") three times.
ifneq ($(filter-out debug,$(KERNEL)),)
$(error KERNEL=$(KERNEL): only KERNEL=debug is known)
endif
DEBUG_BUILD := build-debug
DEBUG_TIMEOUT := 5400
DEBUG_TIMEOUT_SCALE := 4
DEBUG_APPEND := no5lvl kasan_multi_shot acpi=noirq

# make check KVER=<name>: another Debian kernel (scripts/kernels.sh), the
# module built against its headers in KVER_BUILD (links to the sources, as
# for the debug kernel). KVER_TIMEOUT is the guest's overall timeout unless
# TIMEOUT is given: the whole suite takes about 40 minutes on 6.1 here.
ifneq ($(KVER),)
ifneq ($(KERNEL),)
$(error KVER and KERNEL=debug do not go together)
endif
ifneq ($(words $(KVER)),1)
$(error KVER='$(KVER)': one name)
endif
endif
KVER_BUILD := build-$(KVER)
KVER_TIMEOUT := 5400

# The release the module is built for (its vermagic), e.g. 6.1.0-56-amd64.
KRELEASE = $(shell sed -n 's/.*UTS_RELEASE "\(.*\)"/\1/p' \
	$(KDIR)/include/generated/utsrelease.h 2>/dev/null)

# Distribution header packages carry no signing key: install unsigned then,
# instead of letting sign-file print SSL errors for every module.
SIGN_KEY = $(wildcard $(KDIR)/certs/signing_key.pem $(KDIR)/output/signing_key.pem)

.PHONY: all modules tools install modules_install tools_install clean \
	deps check lint fuzz demo bench help kdir-check debug-kernel debug-modules \
	kver-modules

all: modules tools

kdir-check:
	@if [ -z "$(KDIR)" ] || [ ! -d "$(KDIR)" ]; then \
		echo "No kernel build tree (KDIR='$(KDIR)'): run 'make deps' or pass KDIR=<dir>" >&2; \
		exit 1; \
	fi

modules: kdir-check
	$(MAKE) -C $(KDIR) M=$(CURDIR) modules

tools:
ifneq ($(HAVE_TOOLS),)
	$(MAKE) -C tools
endif

install: modules_install tools_install

# kbuild skips depmod without a System.map (header packages have none): run
# it for a live install; a staged one (DESTDIR) leaves it to the packager.
modules_install: modules
	$(MAKE) -C $(KDIR) M=$(CURDIR) INSTALL_MOD_DIR=$(INSTALL_MOD_DIR) \
		$(if $(INSTALL_MOD_PATH),INSTALL_MOD_PATH=$(INSTALL_MOD_PATH)) \
		$(if $(SIGN_KEY),,CONFIG_MODULE_SIG_ALL=) \
		modules_install
ifeq ($(INSTALL_MOD_PATH),)
	depmod -a $(KRELEASE)
endif

tools_install: tools
	@if [ -x tools/dmstream ]; then \
		echo "  INSTALL $(DESTDIR)$(PREFIX)/sbin/dmstream"; \
		install -D -m 0755 tools/dmstream $(DESTDIR)$(PREFIX)/sbin/dmstream; \
	fi
	@if [ -f tools/dmstream.8 ]; then \
		echo "  INSTALL $(DESTDIR)$(PREFIX)/share/man/man8/dmstream.8"; \
		install -D -m 0644 tools/dmstream.8 $(DESTDIR)$(PREFIX)/share/man/man8/dmstream.8; \
	fi
ifneq ($(HAVE_TOOLS),)
	$(MAKE) -C tools install-boot PREFIX=$(PREFIX) DESTDIR=$(DESTDIR)
endif

clean:
	@if [ -n "$(KDIR)" ] && [ -d "$(KDIR)" ]; then \
		$(MAKE) -C $(KDIR) M=$(CURDIR) clean; \
	fi
ifneq ($(HAVE_TOOLS),)
	$(MAKE) -C tools clean
endif
	rm -rf selftests/out $(DEBUG_BUILD) $(wildcard build-*)

deps:
	scripts/deps.sh

# deps.sh --check returns at once when nothing is missing. The build is a
# sub-make against the guest kernel's headers (unless KDIR was given), with
# the ABI read only after deps.sh has installed them.
#
# With KERNEL=debug: the debug kernel (built unless cached), the module
# against it, then the same runner booting that kernel.
ifeq ($(KERNEL),debug)
check:
	@scripts/deps.sh --check 2>/dev/null || scripts/deps.sh
	@$(MAKE) --no-print-directory debug-modules tools
	@selftests/run_tests.sh --timeout $(or $(TIMEOUT),$(DEBUG_TIMEOUT)) \
		--kernel "$$(scripts/debug-kernel.sh --image)" \
		--modules "$$(scripts/debug-kernel.sh --modules)" \
		--append "$(DEBUG_APPEND)" \
		-e DMSTREAM_TIMEOUT_SCALE=$(DEBUG_TIMEOUT_SCALE) \
		-e DMSTREAM_KO=$(CURDIR)/$(DEBUG_BUILD)/dm-stream/dm-stream.ko $(T)
else ifneq ($(KVER),)
check:
	@scripts/deps.sh --check 2>/dev/null || scripts/deps.sh
	@scripts/kernels.sh --check $(KVER) 2>/dev/null || scripts/kernels.sh $(KVER) >/dev/null
	@$(MAKE) --no-print-directory kver-modules tools
	@scripts/dkms-check.sh --quiet --kernel "$$(scripts/kernels.sh --release $(KVER))" || true
	@selftests/run_tests.sh --timeout $(or $(TIMEOUT),$(KVER_TIMEOUT)) \
		--kernel "$$(scripts/kernels.sh --image $(KVER))" \
		--modules "$$(scripts/kernels.sh --modules $(KVER))" \
		-e DMSTREAM_KO=$(CURDIR)/$(KVER_BUILD)/dm-stream/dm-stream.ko $(T)
else
check:
	@scripts/deps.sh --check 2>/dev/null || scripts/deps.sh
	@$(MAKE) --no-print-directory all \
		$(if $(filter file,$(origin KDIR)),KDIR=/usr/src/linux-headers-$$(scripts/deps.sh --abi))
	@scripts/dkms-check.sh --quiet --kernel "$$(scripts/deps.sh --abi)" || true
	@selftests/run_tests.sh $(if $(TIMEOUT),--timeout $(TIMEOUT)) $(T)
endif

debug-kernel:
	@scripts/debug-kernel.sh >/dev/null

# kbuild of 6.1 writes objects beside the sources: build from links to the
# sources (not to the stock build's generated dm-stream.mod.c, which kbuild
# would write through the link).
# $(call link-sources,DIR): DIR/Kbuild and DIR/dm-stream/ linking to the
# sources.
define link-sources
	@mkdir -p $(1)/dm-stream
	@ln -sfn ../Kbuild $(1)/Kbuild
	@cd $(1)/dm-stream && \
		for f in ../../dm-stream/Kbuild ../../dm-stream/*.[ch]; do \
			case $$f in *.mod.c) continue ;; esac; \
			ln -sfn "$$f" .; \
		done
endef

debug-modules: debug-kernel
	$(call link-sources,$(DEBUG_BUILD))
	$(MAKE) -C "$$(scripts/debug-kernel.sh --kdir)" M=$(CURDIR)/$(DEBUG_BUILD) modules

# The module for KVER (make check KVER=...), against its headers.
kver-modules:
	@[ -n "$(KVER)" ] || { echo "kver-modules needs KVER=<name>" >&2; exit 1; }
	$(call link-sources,$(KVER_BUILD))
	$(MAKE) -C "$$(scripts/kernels.sh --kdir $(KVER))" M=$(CURDIR)/$(KVER_BUILD) modules

# Like check, with the fuzz and soak tests only, at full counts
# (DMSTREAM_FUZZ=full); each may take up to an hour in the guest.
FUZZ_TESTS = $(sort $(notdir $(basename $(wildcard selftests/test_fuzz_*.sh \
	selftests/test_soak_*.sh))))
fuzz:
	@scripts/deps.sh --check 2>/dev/null || scripts/deps.sh
	@$(MAKE) --no-print-directory all \
		$(if $(filter file,$(origin KDIR)),KDIR=/usr/src/linux-headers-$$(scripts/deps.sh --abi))
	@selftests/run_tests.sh --timeout $(or $(TIMEOUT),7200) -e DMSTREAM_FUZZ=full \
		-e DMSTREAM_TEST_TIMEOUT=3600 $(if $(SEED),-e DMSTREAM_FUZZ_SEED=$(SEED)) \
		$(FUZZ_TESTS)

# Like check: deps first when anything is missing, then the build, then one
# guest boot running tools/demo.sh.
demo:
	@scripts/deps.sh --check 2>/dev/null || scripts/deps.sh
	@$(MAKE) --no-print-directory all \
		$(if $(filter file,$(origin KDIR)),KDIR=/usr/src/linux-headers-$$(scripts/deps.sh --abi))
	@tools/demo.sh $(if $(TIMEOUT),--timeout $(TIMEOUT))

lint:
	@scripts/lint.sh

# bench/run.sh builds the module against the guest kernel's headers itself.
bench:
	@bench/run.sh $(BENCH_ARGS)

help:
	@sed -n '3,/^$$/s/^# \{0,1\}//p' Makefile
