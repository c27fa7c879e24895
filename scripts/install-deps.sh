#!/usr/bin/env bash
# Installs what ferrocopr needs on a Debian host, and nothing when it is all there already.
#   rpm, rpm2cpio:             building SRPMs and RPMs (rpmbuild), decompressing SRPMs for DistGit;
#                              rpmsign, the baseline of the signing benchmark and of the signature-tag test
#   cpio:                      the baseline of DistGit's import benchmark
#   createrepo-c:              the reference the native repodata writer is tested against (never run by ferrocopr)
#   dnf, dnf-plugins-core:     `dnf copr enable` and installs in the end-to-end tests
#   gnupg:                     reading key ids in tests; gpg and gpg-agent for rpmsign (Debian's gnupg
#                              brings gpg-agent; its rpm looks for gpg2, so callers define %__gpg)
#   libssl-dev, pkg-config, libclang-dev: the OpenSSL crypto backend of sequoia (bindgen)
#   make:                      the make_srpm SRPM method (make -f .copr/Makefile srpm)
#   git:                       `git archive` for Source0 tarballs
#   openssh-server, openssh-client: a real sshd and ssh-keygen for the SSH builder host tests
#   chromium:                  the web UI's acceptance test loads every page in headless Chromium,
#                              follows a running build's log with the page's script and takes
#                              the screenshots in docs/screenshots/ (large, ~300 MB with its
#                              libraries, but CI needs it: that test fails without it)
#   python3, python3-venv:     a virtualenv with the real copr-cli from PyPI (tests/tests/copr_cli.rs)
set -euo pipefail

packages=(make rpm rpm2cpio cpio createrepo-c dnf dnf-plugins-core gnupg libssl-dev pkg-config libclang-dev git ca-certificates openssh-server openssh-client chromium python3 python3-venv)
missing=()
for p in "${packages[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
    echo "install-deps: installing ${missing[*]}"
    sudo=""
    [ "$(id -u)" -eq 0 ] || sudo="sudo"
    $sudo apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${missing[@]}" >/dev/null
fi
command -v cargo >/dev/null || { echo "install-deps: cargo is missing: install Rust with rustup" >&2; exit 1; }
