import CZeroMQ
import FlowPolicy
import SimBridge
public func _zmqProbe() -> Int32 { var a: Int32 = 0, b: Int32 = 0, c: Int32 = 0; zmq_version(&a,&b,&c); return a }
