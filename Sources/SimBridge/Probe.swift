import CMuJoCo
public func _mjProbe() -> Int32 { mj_version() }
