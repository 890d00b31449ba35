/// A scripted demonstrator for a task. Privileged: it reads the simulator's true state and may plan by simulating
/// (on its own copy of the environment), since it only produces demonstrations and reference success rates.
///
/// Deterministic: the same episode (seed) gives the same actions. One expert per environment; not `Sendable`.
public protocol Expert: AnyObject {
    /// Called right after `environment.reset(seed:)`: forget the last episode and plan this one.
    func begin(episodeSeed: UInt64) throws
    /// Writes the next action (`actionDimensions` floats) for the environment's current state.
    func act(action: UnsafeMutablePointer<Float>) throws
}
