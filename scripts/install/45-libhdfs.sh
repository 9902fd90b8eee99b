#!/usr/bin/env bash
# libhdfs.so for the hdfs-pyarrow conformance spec (pyarrow.fs.HadoopFileSystem, MLflow's HDFS client).
# Apache ships libhdfs only inside Hadoop's binary tarball, which no package registry serves. The
# pydoop 2.0.0 sdist on PyPI carries a copy of Apache Hadoop's libhdfs C sources
# (src/libhdfs, Apache-2.0), so pip fetches that sdist by name and version (pinned by sha256, checked
# by pip before it runs the sdist's setup.py for metadata, and again here), we compile those sources
# with gcc against Java 17's JNI headers, and put the result in conformance/servers/minidfs/target/libhdfs.
# Nothing of it is committed. A no-op when the library is already built.
set -euo pipefail
here="$(cd "$(dirname "$0")/../.." && pwd)"
out="$here/conformance/servers/minidfs/target/libhdfs"
version="2.0.0"
sha256="c7eb2ad8c36d2a75dc1c6cee701928334614f2e862a70798b0cb278e3102f77d"

if [ -f "$out/libhdfs.so" ]; then
  exit 0
fi
if ! command -v gcc >/dev/null 2>&1; then
  if [ "${CI:-}" = "true" ] && [ "$(id -u)" = "0" ]; then
    apt-get update -qq && apt-get install -y -qq --no-install-recommends gcc libc6-dev >/dev/null
  else
    echo "45-libhdfs: gcc is required to build libhdfs.so for the hdfs-pyarrow tests" >&2
    exit 1
  fi
fi
java_home="${JAVA_HOME:-$(dirname "$(dirname "$(readlink -f "$(command -v javac)")")")}"
if [ ! -f "$java_home/include/jni.h" ] || [ ! -f "$java_home/lib/server/libjvm.so" ]; then
  echo "45-libhdfs: no JDK with jni.h and lib/server/libjvm.so at $java_home (set JAVA_HOME)" >&2
  exit 1
fi

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
echo "pydoop==$version --hash=sha256:$sha256" >"$work/requirements.txt"
# pip prepares the sdist's metadata with its setup.py, which imports pkg_resources (gone from setuptools 81).
echo "setuptools<81" >"$work/build-constraints.txt"
"$here/.venv/bin/python" -m pip download -q --no-deps --no-binary :all: \
  --build-constraint "$work/build-constraints.txt" -r "$work/requirements.txt" -d "$work/sdist"
sdist="$work/sdist/pydoop-$version.tar.gz"
echo "$sha256  $sdist" | sha256sum --check --quiet
tar -xzf "$sdist" -C "$work" "pydoop-$version/src/libhdfs"
src="$work/pydoop-$version/src/libhdfs"
mkdir -p "$out"
gcc -O2 -fPIC -shared -w -o "$out/libhdfs.so.tmp" \
  -I"$src" -I"$src/include" -I"$src/include/hdfs" -I"$src/os/posix" \
  -I"$java_home/include" -I"$java_home/include/linux" \
  "$src"/*.c "$src"/common/*.c "$src"/os/posix/*.c \
  -L"$java_home/lib/server" -ljvm -Wl,-rpath,"$java_home/lib/server" -lpthread
mv "$out/libhdfs.so.tmp" "$out/libhdfs.so"
echo "libhdfs.so built in $out (Apache Hadoop's libhdfs sources from pydoop $version)"
