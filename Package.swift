// swift-tools-version:6.0
import PackageDescription

let package = Package(
    name: "flowpolicy",
    platforms: [.macOS(.v14)],
    products: [
        .executable(name: "flowpolicy", targets: ["flowpolicy"]),
        .library(name: "FlowPolicy", targets: ["FlowPolicy"]),
        .library(name: "SimBridge", targets: ["SimBridge"]),
        .library(name: "PolicyRuntime", targets: ["PolicyRuntime"]),
    ],
    dependencies: [
        // Command-line parsing, `--help` and subcommands for the `flowpolicy` executable.
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.5.0"),
        // Reads the task files (`tasks/<name>/task.yaml`) with line-numbered errors.
        .package(url: "https://github.com/jpsim/Yams", from: "6.0.0"),
        // The wire protocol (`proto/flowpolicy/v1/flowpolicy.proto`; the generated Swift code is committed).
        .package(url: "https://github.com/apple/swift-protobuf", from: "1.28.0"),
        // HDR histograms of loop jitter and latencies.
        .package(url: "https://github.com/HdrHistogram/hdrhistogram-swift", from: "0.2.0"),
    ],
    targets: [
        // C libraries from Debian packages (see README: libopenblas-dev, libmujoco-dev, libzmq3-dev).
        .systemLibrary(name: "COpenBLAS", path: "Sources/FlowPolicy/COpenBLAS"),
        .systemLibrary(name: "CMuJoCo", path: "Sources/SimBridge/CMuJoCo"),
        .systemLibrary(name: "CZeroMQ", path: "Sources/PolicyRuntime/CZeroMQ"),
        // Counts heap allocations per thread (malloc is forwarded to glibc); used by `bench` and the tests.
        .target(name: "CAllocationCounter"),

        .target(name: "FlowPolicy", dependencies: ["COpenBLAS"], exclude: ["COpenBLAS"]),
        .target(name: "SimBridge", dependencies: ["CMuJoCo", "Yams"], exclude: ["CMuJoCo"]),
        .target(
            name: "PolicyRuntime",
            dependencies: [
                "FlowPolicy", "SimBridge", "CZeroMQ", "CAllocationCounter",
                .product(name: "SwiftProtobuf", package: "swift-protobuf"),
                .product(name: "Histogram", package: "hdrhistogram-swift"),
            ],
            exclude: ["CZeroMQ"]),
        .executableTarget(
            name: "flowpolicy",
            dependencies: ["PolicyRuntime", .product(name: "ArgumentParser", package: "swift-argument-parser")]),

        .testTarget(name: "FlowPolicyTests", dependencies: ["FlowPolicy", "CAllocationCounter"]),
        .testTarget(name: "SimBridgeTests", dependencies: ["SimBridge", "CAllocationCounter"]),
        .testTarget(name: "PolicyRuntimeTests", dependencies: ["PolicyRuntime"]),
    ]
)
