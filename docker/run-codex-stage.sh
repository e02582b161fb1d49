#!/bin/sh
# Runs the Dockerfile's codex stage on this host, in a scratch prefix: its own RUN command with
# the image's paths moved under $1, so that a broken glob or path fails `make test` rather than a
# user's `docker build`. Then checks what the final stage takes from it, and that every file the
# build stage copies exists. Usage: docker/run-codex-stage.sh SCRATCH_DIR
set -eu
mkdir -p "$1"
scratch=$(cd "$1" && pwd)
here=$(cd "$(dirname "$0")" && pwd)
dockerfile=$here/Dockerfile

version=$(sed -n 's/^ARG CODEX_VERSION=//p' "$dockerfile")
# The codex stage's RUN command, its continuation lines joined.
run=$(awk '/^FROM .* AS codex$/ { inside = 1; next } /^FROM / { inside = 0 } inside' "$dockerfile" \
  | sed -n '/^RUN /,/[^\\]$/p' | sed -e 's/\\$//' -e 's/^RUN //' | tr '\n' ' ')
[ -n "$run" ] || { echo "no RUN command found in the Dockerfile's codex stage"; exit 1; }
run=$(printf '%s' "$run" | sed \
  -e "s#npm install --global#npm install --global --prefix $scratch/npm#" \
  -e "s#/usr/local/lib/node_modules#$scratch/npm/lib/node_modules#g" \
  -e "s#/opt/codex#$scratch/opt/codex#g")
rm -rf "$scratch/npm" "$scratch/opt"
CODEX_VERSION=$version sh -ec "$run"

# The final stage's CODEX_PATH and PATH point into what the codex stage copied.
codex_path=$(sed -n 's#^.*CODEX_PATH=/opt/codex/\([^ ]*\).*$#\1#p' "$dockerfile")
path_dir=$(sed -n 's#^.*PATH=/opt/codex/\([^:]*\):.*$#\1#p' "$dockerfile")
test -x "$scratch/opt/codex/$codex_path" \
  || { echo "CODEX_PATH=/opt/codex/$codex_path is not in what the codex stage copies"; exit 1; }
test -d "$scratch/opt/codex/$path_dir" \
  || { echo "PATH names /opt/codex/$path_dir, which the codex stage does not create"; exit 1; }

# Every source the build stage copies from the repository exists.
awk '/^FROM .* AS build$/ { inside = 1; next } /^FROM / { inside = 0 } inside && /^COPY / && !/--from/' "$dockerfile" \
  | while read -r _ sources; do
      for source in ${sources% *}; do
        test -e "$here/../$source" || { echo "the build stage copies $source, which does not exist"; exit 1; }
      done
    done
echo "codex stage: codex-cli $version installed and copied as the image does; CODEX_PATH, PATH and the build stage's sources exist"
