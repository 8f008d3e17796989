#!/bin/sh
# Fails unless the fuzz build's Swift and C++ objects carry libFuzzer's coverage counters.
# swiftc keeps only the last -sanitize= it is given: `-sanitize=fuzzer -sanitize=address`
# built Swift with AddressSanitizer and no coverage, and libFuzzer then ran blind on every
# Swift path (the OTLP harness found "no interesting inputs") without failing.
set -eu
dir=.build-fuzz/release
for o in "$dir/Transforms.build/JSONDecodeTransform.swift.o" "$dir/Sources.build/OTLPMapping.swift.o" "$dir/CSimdJSON.build/scan_decode.cpp.o"; do
  objdump -h "$o" | grep -q __sancov_cntrs || { echo "fuzz build: $o has no coverage counters" >&2; exit 1; }
done
