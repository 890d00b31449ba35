import COpenBLAS
public func _blasProbe() -> Float { var x: [Float] = [1,2]; return cblas_sdot(2, &x, 1, &x, 1) }
