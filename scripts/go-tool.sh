#!/usr/bin/env bash
# Print the path of a Go-built tool, building it once into a cache:
#
#   scripts/go-tool.sh promtool|prometheus|docker-compose
#
# No download site is reached: each tool's module is fetched from the Go module proxy
# (`go mod download`) and its command built with the installed Go inside the module's
# own directory, like the broker's jars are resolved from Maven Central. Building
# there, rather than `go install module/cmd@version`, makes the tool's go.mod the main
# module, so its replace and exclude directives apply as in its own release build
# (`go install ...@version` refuses a go.mod that has them, as compose's does). The
# first build of a tool takes minutes (Prometheus: about 6); after that the cached
# binary is printed at once.
#
# Environment:
#   SHOP_TOOLS_DIR  where the binaries are kept (default ~/.cache/shop-tools)
set -euo pipefail

tool="${1:?usage: scripts/go-tool.sh promtool|prometheus|docker-compose}"
# module, version, the command's directory in the module, and -ldflags (compose prints
# its version from a variable its Makefile sets at link time)
ldflags=""
case "$tool" in
  promtool) module="github.com/prometheus/prometheus" version="v0.316.0" command_dir="cmd/promtool" ;;
  prometheus) module="github.com/prometheus/prometheus" version="v0.316.0" command_dir="cmd/prometheus" ;;
  docker-compose)
    module="github.com/docker/compose/v5" version="v5.6.0" command_dir="cmd"
    ldflags="-X github.com/docker/compose/v5/internal.Version=v5.6.0"
    ;;
  *)
    echo "go-tool.sh: unknown tool $tool (promtool, prometheus, docker-compose)" >&2
    exit 2
    ;;
esac
tools_dir="${SHOP_TOOLS_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/shop-tools}"
binary="$tools_dir/$tool-$version"

if [[ ! -x "$binary" ]]; then
  command -v go >/dev/null || {
    echo "go-tool.sh: Go is needed to build $tool once (then it is cached in $tools_dir)" >&2
    exit 1
  }
  echo "go-tool.sh: building $tool $version once (a few minutes; cached in $tools_dir)" >&2
  module_dir="$(go mod download -json "$module@$version" | sed -n 's/^\t"Dir": "\(.*\)",$/\1/p')"
  [[ -d "$module_dir" ]] || {
    echo "go-tool.sh: go mod download $module@$version gave no module directory" >&2
    exit 1
  }
  mkdir -p "$tools_dir"
  # built beside the cache and renamed into it: a build that fails or is interrupted
  # leaves no binary behind that a later run would take as done
  partial="$binary.partial.$$"
  trap 'rm -f "$partial"' EXIT
  # GOWORK=off: a go.work shipped in the module (Prometheus's) names modules its zip
  # leaves out; the module's own go.mod and go.sum are what its release is built from
  (cd "$module_dir" && GOWORK=off go build -ldflags "$ldflags" -o "$partial" "./$command_dir") >&2
  mv "$partial" "$binary"
fi
echo "$binary"
