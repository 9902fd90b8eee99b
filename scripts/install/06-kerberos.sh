#!/usr/bin/env bash
# MIT Kerberos for the hdfs_kerberos tests: krb5kdc and kdb5_util (krb5-kdc), kadmin.local
# (krb5-admin-server), kinit (krb5-user) and libgssapi_krb5 (hdfs-native's Kerberos). The tests write
# their own krb5.conf/kdc.conf in a temporary directory; no service is started or configured here.
# Idempotent; without root it installs nothing and says so (the Kerberos fixture then fails naming this script).
set -euo pipefail
installed() {
  [ -x /usr/sbin/krb5kdc ] && [ -x /usr/sbin/kdb5_util ] && [ -x /usr/sbin/kadmin.local ] &&
    command -v kinit >/dev/null 2>&1 && ldconfig -p 2>/dev/null | grep 'libgssapi_krb5\.so\.2' >/dev/null
}
if installed; then
  exit 0
fi
if [ "$(id -u)" != "0" ]; then
  echo "06-kerberos: not root, so krb5-kdc/krb5-admin-server/krb5-user are not installed; hdfs_kerberos tests will fail" >&2
  exit 0
fi
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq >/dev/null
apt-get install -y -qq --no-install-recommends krb5-kdc krb5-admin-server krb5-user libgssapi-krb5-2 >/dev/null
installed
