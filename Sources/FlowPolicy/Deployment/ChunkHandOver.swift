/// How consecutive action chunks hand over to each other.
public enum ChunkHandOver: String, CaseIterable, Codable, Sendable {
    /// Execute Ta actions of each chunk, then switch to the next (Diffusion Policy).
    case receding
    /// Average every chunk's prediction for the current step with weights `exp(-k i)`, i = 0 for the oldest (ACT).
    case ensemble
    /// Receding horizon whose next chunk is sampled with the actions already committed held on their flow path
    /// (inpainting), so it continues them without a jump (RTC-style).
    case continuation
}
