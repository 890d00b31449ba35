import PolicyRuntime
import FlowPolicy
import SimBridge
print(_blasProbe(), _mjProbe(), ZMQContext.libraryVersion.major)
