import Testing

import SimBridge

/// Small MJCF scenes shared by the tests.
enum Fixtures {
    /// A ball on a free joint, 10 m above nothing: it falls freely.
    static let fallingBall = """
        <mujoco>
          <option timestep="0.002"/>
          <worldbody>
            <body name="ball" pos="0 0 10">
              <freejoint name="ball"/>
              <geom name="ball" type="sphere" size="0.1" mass="1"/>
            </body>
          </worldbody>
        </mujoco>
        """

    /// A box on a free joint dropped onto a floor. `nstack` sets MuJoCo's scratch stack: 100 values are enough for
    /// the steps before the box lands (and for the test step the compiler runs) but not for the four contacts of
    /// the landing, which need 262 in MuJoCo 2.2.2.
    static func boxOnFloor(nstack: Int? = nil) -> String {
        let size = nstack.map { "<size nstack=\"\($0)\"/>" } ?? ""
        return """
            <mujoco>
              \(size)
              <option timestep="0.002"/>
              <worldbody>
                <geom name="floor" type="plane" size="1 1 0.1"/>
                <body name="box" pos="0 0 0.3">
                  <freejoint name="box"/>
                  <geom name="box" type="box" size="0.1 0.1 0.1" mass="1"/>
                </body>
              </worldbody>
            </mujoco>
            """
    }

    /// A two-link arm with motors pushing a free box on a floor, plus a mocap body, a site, sensors, userdata and
    /// a keyframe: everything `SimulationState` has to carry.
    static let armAndBox = """
        <mujoco>
          <compiler angle="radian"/>
          <size nuserdata="3"/>
          <option timestep="0.002"/>
          <worldbody>
            <geom name="floor" type="plane" size="2 2 0.1"/>
            <body name="target" mocap="true" pos="0.5 0 0.5">
              <geom type="sphere" size="0.02" contype="0" conaffinity="0"/>
            </body>
            <body name="upper" pos="0 0 0.1">
              <joint name="shoulder" type="hinge" axis="0 0 1" damping="0.1"/>
              <geom name="upper" type="capsule" fromto="0 0 0 0.3 0 0" size="0.03" mass="0.5"/>
              <body name="lower" pos="0.3 0 0">
                <joint name="elbow" type="hinge" axis="0 0 1" range="-2 2" limited="true" damping="0.1"/>
                <geom name="lower" type="capsule" fromto="0 0 0 0.3 0 0" size="0.03" mass="0.3"/>
                <site name="tip" pos="0.3 0 0"/>
              </body>
            </body>
            <body name="box" pos="0.45 0.15 0.06">
              <freejoint name="box"/>
              <geom name="box" type="box" size="0.05 0.05 0.05" mass="0.2"/>
            </body>
          </worldbody>
          <actuator>
            <motor name="shoulder" joint="shoulder" gear="1" ctrlrange="-2 2" ctrllimited="true"/>
            <motor name="elbow" joint="elbow" gear="1"/>
          </actuator>
          <sensor>
            <jointpos name="shoulder" joint="shoulder"/>
            <framepos name="tip" objtype="site" objname="tip"/>
          </sensor>
          <keyframe>
            <key name="bent" time="1.5" qpos="0.3 -1.2 0.45 0.15 0.06 1 0 0 0" ctrl="0.5 -0.5"/>
          </keyframe>
        </mujoco>
        """
}

/// A small seeded generator (SplitMix64), so that random controls are the same on every run.
struct SplitMix64: RandomNumberGenerator {
    var state: UInt64

    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}

/// The `MuJoCoError` `body` throws, or nil if it returns. (A closure's thrown type is not inferred from the typed
/// throws inside it, so the closure throws `any Error`.)
func error<R>(of body: () throws -> R) -> MuJoCoError? {
    do {
        _ = try body()
        return nil
    } catch let error as MuJoCoError {
        return error
    } catch {
        Issue.record("expected a MuJoCoError, got \(error)")
        return nil
    }
}
