#!/usr/bin/env bash
# Hadoop's MiniDFSCluster for the hdfs conformance tests: Maven fetches hadoop-client-minicluster
# (about 90 MB, cached in ~/.m2) into conformance/servers/minidfs/target/lib and javac compiles the
# tiny main, so the test run starts `java -cp ...` directly. A no-op when both are up to date.
set -euo pipefail
here="$(cd "$(dirname "$0")/../.." && pwd)"
project="$here/conformance/servers/minidfs"
source_file="$project/src/main/java/org/artifactfs/minidfs/MiniDfs.java"
class_file="$project/target/classes/org/artifactfs/minidfs/MiniDfs.class"
stamp="$project/target/lib/.pom-stamp"

need() {
  if ! command -v "$1" >/dev/null 2>&1; then
    if [ "${CI:-}" = "true" ] && [ "$(id -u)" = "0" ]; then
      apt-get update -qq && apt-get install -y -qq --no-install-recommends openjdk-17-jdk-headless maven >/dev/null
    else
      echo "$1 is required for the HDFS tests (install Java 17 and Maven)" >&2
      exit 1
    fi
  fi
}
need java
need javac
need mvn

if [ ! -f "$stamp" ] || [ "$project/pom.xml" -nt "$stamp" ]; then
  rm -rf "$project/target/lib"
  mvn -q -B -Dstyle.color=never -f "$project/pom.xml" dependency:copy-dependencies \
    -DincludeScope=runtime -DoutputDirectory="$project/target/lib"
  touch "$stamp"
fi
if [ ! -f "$class_file" ] || [ "$source_file" -nt "$class_file" ] || [ "$stamp" -nt "$class_file" ]; then
  mkdir -p "$project/target/classes"
  javac -nowarn --release 17 -cp "$project/target/lib/*" -d "$project/target/classes" "$source_file"
  echo "MiniDFSCluster built in $project/target"
fi
