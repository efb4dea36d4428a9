# Shared by the benchmark drivers (sourced after ROOT is set).
# bench_build TARGET...: configures the Release tree in $BUILD (default $CAMTRUST_BENCH_BUILD, else build-bench) every time
# (cheap, and a folder made before a new target still gets it) and builds the targets. Sets BUILD.
bench_build() {
  BUILD=${BUILD:-${CAMTRUST_BENCH_BUILD:-$ROOT/build-bench}}
  echo "== building (Release) in $BUILD"
  local log
  log=$(mktemp "${TMPDIR:-/tmp}/camtrust-bench-build.XXXXXX")
  if ! cmake -S "$ROOT" -B "$BUILD" -DCMAKE_BUILD_TYPE=Release >"$log" 2>&1 ||
     ! cmake --build "$BUILD" -j"$(nproc)" --target "$@" >>"$log" 2>&1; then
    cat "$log" >&2; rm -f "$log"
    echo "run: build failed (cmake --build $BUILD --target $*)" >&2
    exit 1
  fi
  rm -f "$log"
  grep -q 'CMAKE_BUILD_TYPE:STRING=Release' "$BUILD/CMakeCache.txt" || echo "note: $BUILD is not a Release build"
}
