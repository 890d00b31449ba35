import Foundation

extension TaskDescription {
    /// The coverage at which Push-T's reward, `clip(coverage / success_coverage, 0, 1)`, reaches 1 (0.95): Diffusion
    /// Policy's Push-T score is the episode's largest reward, `min(max coverage / 0.95, 1)`, averaged over episodes.
    /// Nil for a task whose success is not a coverage threshold (every task but Push-T and Push-T image).
    public func diffusionPolicyScoreCoverage() throws(EnvironmentError) -> Double? {
        try settings(CoverageTaskFile.self).environment.successCoverage
    }

    /// The one key of `task.yaml` this needs.
    private struct CoverageTaskFile: Decodable {
        struct Environment: Decodable {
            var successCoverage: Double?
            enum CodingKeys: String, CodingKey { case successCoverage = "success_coverage" }
        }
        var environment: Environment
    }
}
