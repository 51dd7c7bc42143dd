# imgbuild — see README.md.
GO      ?= go
BIN     ?= bin/imgbuild
PKGS    ?= ./...
TIMEOUT ?= 40m

# The version and commit come from git; make release VERSION=v1.2.3 overrides.
VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
COMMIT  ?= $(shell git rev-parse HEAD 2>/dev/null || echo unknown)$(if $(shell git status --porcelain 2>/dev/null),-dirty)
LDFLAGS := -s -w -X main.Version=$(VERSION) -X main.Commit=$(COMMIT)

# Where make release puts its binaries and SHA256SUMS, and for which systems.
RELEASE_DIR ?= bin/release
PLATFORMS   ?= linux/amd64 linux/arm64 darwin/amd64 darwin/arm64

.PHONY: all build release deps test bench bench-rootfs bench-quickstart scale demo vagrant-up e2e-ansible e2e-iso fmt lint fuzz clean

all: build

build:
	$(GO) build -trimpath -ldflags '$(LDFLAGS)' -o $(BIN) ./cmd/imgbuild

## release: static, stripped binaries (CGO_ENABLED=0, -trimpath) for every
## platform in PLATFORMS, named imgbuild-VERSION-OS-ARCH, with SHA256SUMS
release:
	@mkdir -p $(RELEASE_DIR)
	@rm -f $(RELEASE_DIR)/SHA256SUMS
	@set -e; for p in $(PLATFORMS); do \
	  os=$${p%/*}; arch=$${p#*/}; out=imgbuild-$(VERSION)-$$os-$$arch; \
	  echo "building $(RELEASE_DIR)/$$out"; \
	  CGO_ENABLED=0 GOOS=$$os GOARCH=$$arch $(GO) build -trimpath -ldflags '$(LDFLAGS)' -o $(RELEASE_DIR)/$$out ./cmd/imgbuild; \
	done
	cd $(RELEASE_DIR) && sha256sum imgbuild-$(VERSION)-* > SHA256SUMS
	@cat $(RELEASE_DIR)/SHA256SUMS

## deps: install what the demo and tests need, where it is missing
deps:
	./.ci/deps

## test: the whole suite, with the race detector (installs what it needs
## first); RACE= runs it without
RACE    ?= -race
test: deps
	$(GO) vet $(PKGS)
	$(GO) test $(RACE) -count=1 -timeout $(TIMEOUT) $(PKGS)

## bench: the performance figures (Go benchmarks and side-by-side scripts):
## plan, orchestration overhead, no-op re-runs of local() and of amazon_ebs
## on moto, memory per concurrent SSH build beside OpenSSH
bench: deps build
	GO=$(GO) $(GO) run ./cmd/imgbench -imgbuild $(BIN) -builds 1000 -local 30 -amazon 100 -ssh-memory 30,100

## bench-rootfs: the quickstart's rootfs() build cold, then with only its
## provisioner's file changed (debootstrap checkpoint reused), beside mkosi
## -i doing the same (MKOSI=false leaves it out). Needs root; minutes.
MKOSI ?= true
bench-rootfs: build
	$(GO) run ./cmd/imgbench -imgbuild $(BIN) -rootfs -mkosi=$(MKOSI)

## bench-quickstart: the whole quickstart cold, re-run with nothing
## changed, then with only its qemu stage's provisioner changed. Needs
## root; 10-30 minutes under TCG. QUICKSTART_DIR keeps the workspace, and a
## workspace built before leaves the cold run out.
QUICKSTART_DIR ?=
bench-quickstart: build
	$(GO) run ./cmd/imgbench -imgbuild $(BIN) -quickstart -quickstart-dir=$(QUICKSTART_DIR)

## scale: 100,000 local() builds under ulimit -n 1024 (log files are open
## only while their build runs); SCALE_BUILDS changes the count
SCALE_BUILDS ?= 100000
scale: build
	@d=$$(mktemp -d) && printf 'for i in range(%d):\n    local(name = "b%%d" %% i)\n' $(SCALE_BUILDS) > $$d/images.star && \
	  (ulimit -n 1024 && cd $$d && /usr/bin/time -f '%es %MKB' $(abspath $(BIN)) run images.star --no-color --parallel 8 > out.txt); \
	  code=$$?; tail -2 $$d/out.txt; rm -rf $$d; exit $$code

## demo: the main job on this machine, no cloud account needed: the
## quickstart (a Debian image built with debootstrap, booted with QEMU,
## checked over SSH, exported as qcow2, Vagrant boxes for libvirt and
## VirtualBox, and an OVA), then lists what it made. Needs root.
demo: deps build
	$(if $(filter 0,$(shell id -u)),,sudo) $(BIN) run examples/quickstart.star
	@echo; echo "made, in examples/ (SHA-256 sums in output/manifest.json):"
	@cd examples && find output -name '.*' -prune -o -type f -print | sort | xargs ls -lh | awk '{ printf "  %-48s %s\n", $$9, $$5 }'

## vagrant-up: boot a libvirt box with vagrant up --provider=libvirt
## (Debian's vagrant-libvirt, and a libvirtd of its own in private network
## and mount namespaces), reach it with vagrant ssh, destroy it, and print
## the time of each part. BOX defaults to the quickstart's (make demo makes
## it). Needs root.
BOX ?= examples/output/quickstart/quickstart-libvirt.box
vagrant-up:
	$(if $(filter 0,$(shell id -u)),,sudo) ./drivers/vagrant/vagrant-up.sh $(BOX)

## e2e-ansible: examples/ansible.star end to end, outside the CI suite
## (15-20 minutes under TCG): one playbook makes a rootfs image through the
## chroot and a booted QEMU image over SSH, and the test wants the two file
## for file the same. Needs root and Debian's mirror.
e2e-ansible:
	IMGBUILD_INTEGRATION=1 IMGBUILD_E2E_ANSIBLE=1 $(GO) test -count=1 -timeout 60m -v -run TestTheAnsibleExample ./drivers/cfgtool/e2e/

## e2e-iso: Debian's own installer end to end, outside the CI suite: a
## check that the mirror serves the installer's udebs, then an ISO made
## from debian-installer-12-netboot-amd64 (its netboot kernel and initrd
## behind ISOLINUX), preseeded from http_directory, installing bookworm
## from deb.debian.org into a qcow2 that boots with GRUB, then a libvirt
## Vagrant box checked with vagrant box add. Prints the wall time; the
## timestamped log and the serial console are kept in examples/output/.
## Needs a full Debian mirror; under TCG most of an hour.
e2e-iso: build
	./examples/e2e-iso/run.sh $(BIN)

fmt: build
	gofmt -w cmd starlark builtins engine drivers stdlib
	$(BIN) fmt

lint:
	@test -z "$$(gofmt -l cmd starlark builtins engine drivers stdlib)" || (gofmt -l cmd starlark builtins engine drivers stdlib; echo "gofmt: the files above need formatting"; exit 1)
	$(GO) vet $(PKGS)

## fuzz: run every fuzz target for FUZZTIME each
FUZZTIME ?= 60s
fuzz:
	$(GO) test ./starlark/description -run '^$$' -fuzz FuzzEvaluate -fuzztime $(FUZZTIME)
	$(GO) test ./builtins -run '^$$' -fuzz FuzzReadVarFile -fuzztime $(FUZZTIME)
	$(GO) test ./starlark/importer -run '^$$' -fuzz FuzzImportHCL -fuzztime $(FUZZTIME)
	$(GO) test ./starlark/importer -run '^$$' -fuzz FuzzImportJSON -fuzztime $(FUZZTIME)
	$(GO) test ./builtins -run '^$$' -fuzz FuzzSensitiveReadBack -fuzztime $(FUZZTIME)
	$(GO) test ./engine -run '^$$' -fuzz FuzzLoadState -fuzztime $(FUZZTIME)
	$(GO) test ./engine/planfile -run '^$$' -fuzz FuzzReadPlan -fuzztime $(FUZZTIME)
	$(GO) test ./engine/workspace -run '^$$' -fuzz FuzzResolveNeverLeavesTheWorkspace -fuzztime $(FUZZTIME)
	$(GO) test ./starlark/host -run '^$$' -fuzz FuzzParseMod -fuzztime $(FUZZTIME)
	$(GO) test ./starlark/modules -run '^$$' -fuzz FuzzParseLock -fuzztime $(FUZZTIME)
	for t in $$($(GO) test ./drivers/ssh -list 'Fuzz.*' | grep ^Fuzz); do $(GO) test ./drivers/ssh -run '^$$' -fuzz "^$$t$$" -fuzztime $(FUZZTIME) || exit 1; done
	for t in $$($(GO) test ./drivers/amazon -list 'Fuzz.*' | grep ^Fuzz); do $(GO) test ./drivers/amazon -run '^$$' -fuzz "^$$t$$" -fuzztime $(FUZZTIME) || exit 1; done
	for t in $$($(GO) test ./drivers/vsphere -list 'Fuzz.*' | grep ^Fuzz); do $(GO) test ./drivers/vsphere -run '^$$' -fuzz "^$$t$$" -fuzztime $(FUZZTIME) || exit 1; done
	for p in ./drivers/bootcmd ./drivers/iso ./drivers/provision ./drivers/shellquote ./drivers/qemu/qemuimg ./drivers/rootfs ./drivers/chroot ./drivers/ansible ./drivers/ansible/adapter; do \
	  for t in $$($(GO) test $$p -list 'Fuzz.*' | grep ^Fuzz); do $(GO) test $$p -run '^$$' -fuzz "^$$t$$" -fuzztime $(FUZZTIME) || exit 1; done; done

clean:
	rm -rf bin output .imgbuild
