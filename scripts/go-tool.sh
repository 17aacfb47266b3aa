#!/usr/bin/env bash
# Print the path of a Go-built tool, building it once into a cache:
#
#   scripts/go-tool.sh promtool|prometheus|docker-compose
#
# No download site is reached: each tool is built from its module on the Go module
# proxy with the installed Go (`go install module/cmd@version`), like the broker's
# jars are resolved from Maven Central. The first build of a tool takes minutes
# (Prometheus: about 6); after that the cached binary is printed at once.
#
# Environment:
#   SHOP_TOOLS_DIR  where the binaries are kept (default ~/.cache/shop-tools)
set -euo pipefail

tool="${1:?usage: scripts/go-tool.sh promtool|prometheus|docker-compose}"
case "$tool" in
  promtool) package="github.com/prometheus/prometheus/cmd/promtool@v0.316.0" ;;
  prometheus) package="github.com/prometheus/prometheus/cmd/prometheus@v0.316.0" ;;
  docker-compose) package="github.com/docker/compose/v5/cmd@v5.6.0" ;;
  *)
    echo "go-tool.sh: unknown tool $tool (promtool, prometheus, docker-compose)" >&2
    exit 2
    ;;
esac
version="${package##*@}"
tools_dir="${SHOP_TOOLS_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/shop-tools}"
binary="$tools_dir/$tool-$version"

if [[ ! -x "$binary" ]]; then
  command -v go >/dev/null || {
    echo "go-tool.sh: Go is needed to build $tool once (then it is cached in $tools_dir)" >&2
    exit 1
  }
  echo "go-tool.sh: building $tool $version once (a few minutes; cached in $tools_dir)" >&2
  build="$(mktemp -d)"
  trap 'rm -rf "$build"' EXIT
  # the binary is named after the package's last path element; `cmd` for compose
  GOBIN="$build" go install "$package" >&2
  mkdir -p "$tools_dir"
  mv "$build"/* "$binary"
fi
echo "$binary"
