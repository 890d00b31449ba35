import PolicyRuntime
import FlowPolicy
import SimBridge
import Foundation
let args = CommandLine.arguments
let hidden = Int(args[1])!, threads = Int(args[2])!
let spec = PolicySpec(task: "x", observationSteps: 2, actionSteps: 8, predictionSteps: 16, observationDimensions: 5, actionDimensions: 2)
var ds = EpisodeDataset(observationDimensions: 5, actionDimensions: 2)
var g = RandomSource(seed: 1)
for _ in 0..<20 { try! ds.appendEpisode(observations: (0..<500).map { _ in g.nextUniform() }, actions: (0..<200).map { _ in g.nextUniform() }) }
var c = TrainingConfiguration(); c.threads = threads; c.steps = 30
let tr = try! FlowMatchingTrainer(spec: spec, network: spec.networkConfiguration(hidden: hidden, blocks: 4), dataset: ds, configuration: c)
try! tr.trainStep()
let t0 = Date()
for _ in 0..<20 { try! tr.trainStep() }
let dt = Date().timeIntervalSince(t0) / 20
print("core \(BLAS.coreType) H=\(hidden) threads=\(threads): \(dt*1000) ms/step, \(256/dt) samples/s")
