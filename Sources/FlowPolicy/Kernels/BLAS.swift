import COpenBLAS

/// Process-wide OpenBLAS set-up: corrects the kernel choice on CPUs that OpenBLAS 0.3.21 does not recognise
/// (see `Sources/FlowPolicy/COpenBLAS/shim.h`) and sets the thread count.
public enum BLAS {
    /// The OpenBLAS core type in use, after the correction (for reports).
    public static let coreType: String = {
        _ = fp_openblas_correct_core_type()
        return String(cString: openblas_get_corename())
    }()

    /// Threads OpenBLAS uses for one call. Inference on the hot path uses 1; training uses every core.
    public static var threads: Int {
        get {
            _ = coreType
            return Int(openblas_get_num_threads())
        }
        set {
            _ = coreType
            openblas_set_num_threads(Int32(newValue))
        }
    }
}
