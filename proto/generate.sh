#!/usr/bin/env bash
# Regenerates the committed protocol code from proto/flowpolicy/v1/flowpolicy.proto:
#   Sources/PolicyRuntime/Protocol/flowpolicy.pb.swift and clients/python/flowpolicy_client/flowpolicy_pb2.py.
# Needs protoc (Debian: apt-get install protobuf-compiler) and protoc-gen-swift built from the swift-protobuf version
# that Package.swift resolves to (see README, "Deployment"): PROTOC_GEN_SWIFT=/path/to/protoc-gen-swift.
set -euo pipefail
cd "$(dirname "$0")/.."
plugin="${PROTOC_GEN_SWIFT:?set PROTOC_GEN_SWIFT to the protoc-gen-swift binary}"
protoc --plugin=protoc-gen-swift="$plugin" --swift_opt=Visibility=Public --swift_opt=FileNaming=DropPath \
    --swift_out=Sources/PolicyRuntime/Protocol -I proto proto/flowpolicy/v1/flowpolicy.proto
protoc --python_out=clients/python/flowpolicy_client -I proto/flowpolicy/v1 proto/flowpolicy/v1/flowpolicy.proto
