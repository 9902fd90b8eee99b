#!/usr/bin/env bash
# Debian packages the test servers need: OpenSSH's sshd for the SFTP suite.
# Idempotent and quiet; a no-op when everything is present. Without root (a developer machine) it
# installs nothing and the SFTP fixture falls back to the asyncssh server, saying so in its output.
set -euo pipefail
if [ -x /usr/sbin/sshd ]; then
  exit 0
fi
if [ "$(id -u)" != "0" ]; then
  echo "05-system: not root, so openssh-server is not installed; SFTP tests will use the asyncssh fallback" >&2
  exit 0
fi
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq >/dev/null
apt-get install -y -qq --no-install-recommends openssh-server >/dev/null
test -x /usr/sbin/sshd
