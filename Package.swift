// swift-tools-version:6.0
import PackageDescription

let package = Package(
    name: "flowpolicy",
    platforms: [.macOS(.v14)],
    products: [
        .executable(name: "flowpolicy", targets: ["flowpolicy"]),
        // The robot computer's binary: serve, run, record, inspect and keys, with neither MuJoCo nor the task files
        // (README, "Deployment"); build it with `--static-swift-stdlib`.
        .executable(name: "flowpolicy-runtime", targets: ["flowpolicy-runtime"]),
        .library(name: "FlowPolicy", targets: ["FlowPolicy"]),
        .library(name: "SimBridge", targets: ["SimBridge"]),
        .library(name: "PolicyRuntime", targets: ["PolicyRuntime"]),
        .library(name: "PolicyLab", targets: ["PolicyLab"]),
    ],
    dependencies: [
        // Command-line parsing, `--help` and subcommands for the executables.
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
        // Kernels chosen by the CPU at start-up (AVX-512 where it has it, plain C otherwise): Linear layers packed for
        // inference at fp32, bf16 and int8, and the forward pass's Mish and LayerNorm.
        .target(name: "CInferenceKernels"),

        // Numerics: networks, training, sampling, checkpoints, datasets.
        .target(name: "FlowPolicy", dependencies: ["COpenBLAS", "CInferenceKernels"], exclude: ["COpenBLAS"]),
        // Simulation: MuJoCo, the tasks and their experts.
        .target(name: "SimBridge", dependencies: ["CMuJoCo", "Yams"], exclude: ["CMuJoCo"]),
        // What runs on a robot computer: the control loop, the server and client, the transport. No simulator.
        .target(
            name: "PolicyRuntime",
            dependencies: [
                "FlowPolicy", "CZeroMQ",
                .product(name: "SwiftProtobuf", package: "swift-protobuf"),
                .product(name: "Histogram", package: "hdrhistogram-swift"),
            ],
            exclude: ["CZeroMQ"]),
        // The application: sessions behind each command, evaluation, rollouts, benchmarks, the simulated robot.
        .target(name: "PolicyLab", dependencies: [
            "FlowPolicy", "SimBridge", "PolicyRuntime", "CAllocationCounter", .product(name: "Yams", package: "Yams"),
        ]),
        // The commands both executables offer (serve, run, record, inspect, keys) and the option groups every command
        // shares.
        .target(
            name: "FlowPolicyCLI",
            dependencies: ["PolicyRuntime", .product(name: "ArgumentParser", package: "swift-argument-parser")]),
        .executableTarget(name: "flowpolicy", dependencies: ["PolicyLab", "FlowPolicyCLI"]),
        .executableTarget(name: "flowpolicy-runtime", dependencies: ["FlowPolicyCLI"]),

        .testTarget(name: "FlowPolicyTests", dependencies: ["FlowPolicy", "CAllocationCounter", "CInferenceKernels"]),
        .testTarget(name: "SimBridgeTests", dependencies: ["SimBridge", "CAllocationCounter"]),
        // Fixtures the runtime's and the application's tests share: sockets with timeouts, peers, a random policy.
        .target(name: "RuntimeTestSupport", dependencies: ["PolicyRuntime"], path: "Tests/RuntimeTestSupport"),
        .testTarget(
            name: "PolicyRuntimeTests",
            dependencies: ["PolicyRuntime", "RuntimeTestSupport", "CAllocationCounter"]),
        .testTarget(
            name: "PolicyLabTests",
            dependencies: ["PolicyLab", "SimBridge", "RuntimeTestSupport", "CAllocationCounter"]),
    ]
)
