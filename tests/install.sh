#!/usr/bin/env bash
# Installs everything the test suite needs on a fresh Debian machine: the Debian
# packages of the real parts the tests drive (feed readers, browser, mail tools),
# then publisher itself with its test extras. Safe to run again.
set -euo pipefail
cd "$(dirname "$0")/.."

DEBIAN_PACKAGES=(newsboat chromium spamassassin fonts-nanum openssl postgresql dovecot-imapd faketime)

missing=()
for pkg in "${DEBIAN_PACKAGES[@]}"; do
  dpkg -s "$pkg" >/dev/null 2>&1 || missing+=("$pkg")
done
if [ "${#missing[@]}" -gt 0 ]; then
  if [ "$(id -u)" = 0 ]; then
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  else
    echo "tests/install.sh: missing Debian packages (install as root): ${missing[*]}" >&2
  fi
fi
python3 -m pip install -q -e '.[test]'
