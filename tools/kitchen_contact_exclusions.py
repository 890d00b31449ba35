#!/usr/bin/env python3
"""Derive the body pairs of the Franka Kitchen scene that can never touch (task.yaml `collision.exclude`).

    python tools/kitchen_contact_exclusions.py [--scene PATH] [--clearance 0.005]

Needs the `mujoco` Python package, 3.2 or newer (for `mj_geomDistance`); the scene defaults to the asset cache's
gymnasium-robotics-1.4.2/kitchen_franka/kitchen_assets/kitchen_env_model.xml. Prints the YAML list to paste under
`environment.collision.exclude`, grouped by the rule that excludes each pair.

MuJoCo 2.2.2's broadphase hands every overlapping body pair to the geom-pair loops, where same-weld pairs are only
rejected pair by pair; an `<exclude>` drops a body pair before those loops. A pair is excluded only when it provably
never produces a contact (a contact needs the geoms within their margin, so every rule keeps a clearance of
`--clearance` plus the largest margin):

0. filtered: no collidable geom of one body has a contype matching the other's conaffinity or the reverse (the
   Panda's two fingers); MuJoCo's filter rejects every geom pair, an exclusion skips the loop.
1. static: both bodies are welded to the world. MuJoCo never makes contacts within one weld; excluding them only
   skips the work.
2. swept: one body moves on a single hinge or slide joint (a door, knob, switch, the drawer, link1 of the arm) and the
   other is static or also moves on a single joint. Each joint is swept over its range on a grid; the smallest
   distance between their collidable geoms (`mj_geomDistance`, convex hulls as in collision) minus the largest
   distance any point can move between grid points (arm length times half the step for hinges, half the step for
   slides) must exceed the clearance.
3. reach: a robot body and a static or single-joint body that lies farther from the shoulder (the joint-2 centre,
   which joint 1 does not move) than the robot body can ever be: the sum of the link offsets down the chain to the
   body plus its geoms' extent.

The kettle (free joint) and robot-robot pairs are never excluded.
"""
import argparse
import itertools
import os

import mujoco
import numpy as np

OBJ_BODY = mujoco.mjtObj.mjOBJ_BODY


def default_scene():
    root = os.environ.get("FLOWPOLICY_ASSETS") or os.path.join(
        os.environ.get("FLOWPOLICY_CACHE") or os.path.join(os.path.expanduser("~"), ".cache", "flowpolicy"), "assets")
    return os.path.join(root, "gymnasium-robotics-1.4.2", "kitchen_franka", "kitchen_assets", "kitchen_env_model.xml")


class Scene:
    def __init__(self, path, init_qpos):
        self.m = mujoco.MjModel.from_xml_path(path)
        self.d = mujoco.MjData(self.m)
        self.init_qpos = np.array(init_qpos)
        self.reset()

    def reset(self):
        self.d.qpos[:] = self.init_qpos
        mujoco.mj_forward(self.m, self.d)

    def name(self, body):
        return mujoco.mj_id2name(self.m, OBJ_BODY, body)

    def geoms(self, body):
        m = self.m
        return [g for g in range(m.body_geomadr[body], m.body_geomadr[body] + m.body_geomnum[body])
                if m.geom_contype[g] or m.geom_conaffinity[g]]

    def joints(self, body):
        """Joints that move `body` relative to the world (its own and its ancestors')."""
        m, result = self.m, []
        while body != 0:
            result += [j for j in range(m.njnt) if m.jnt_bodyid[j] == body]
            body = m.body_parentid[body]
        return result


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--scene", default=default_scene())
    parser.add_argument("--clearance", type=float, default=0.005, help="metres, beyond the geoms' margins")
    parser.add_argument("--samples", type=int, default=61, help="grid points per swept joint")
    args = parser.parse_args()

    # KitchenEnv.init_qpos (Gymnasium-Robotics 1.4.2), as FrankaKitchen.initialQpos.
    init_qpos = [1.48388023e-01, -1.76848573e00, 1.84390296e00, -2.47685760e00, 2.60252026e-01, 7.12533105e-01,
                 1.59515394e00, 4.79267505e-02, 3.71350919e-02, -2.66279850e-04, -5.18043486e-05, 3.12877220e-05,
                 -4.51199853e-05, -3.90842156e-06, -4.22629655e-05, 6.28065475e-05, 4.04984708e-05, 4.62730939e-04,
                 -2.26906415e-04, -4.65501369e-04, -6.44129196e-03, -1.77048263e-03, 1.08009684e-03, -2.69397440e-01,
                 3.50383255e-01, 1.61944683e00, 1.00618764e00, 4.06395120e-03, -6.62095997e-03, -2.68278933e-04]
    scene = Scene(args.scene, init_qpos)
    m, d = scene.m, scene.d
    clearance = args.clearance + float(m.geom_margin.max())

    bodies = [b for b in range(m.nbody) if scene.geoms(b)]
    static = [b for b in bodies if m.body_weldid[b] == 0]
    single = {b: scene.joints(b)[0] for b in bodies
              if len(scene.joints(b)) == 1 and m.jnt_type[scene.joints(b)[0]] in (mujoco.mjtJoint.mjJNT_HINGE,
                                                                                   mujoco.mjtJoint.mjJNT_SLIDE)}
    robot = [b for b in bodies if (scene.name(b) or "").startswith("panda0_link") or "finger" in (scene.name(b) or "")]
    robot = [b for b in robot if m.body_weldid[b] != 0]

    def arm(body, joint):
        """Largest distance a point of the body's collidable geoms is from the joint's axis (1 for slides)."""
        if m.jnt_type[joint] == mujoco.mjtJoint.mjJNT_SLIDE:
            return 1.0
        anchor, axis = d.xanchor[joint], d.xaxis[joint]
        radius = 0.0
        for g in scene.geoms(body):
            offset = d.geom_xpos[g] - anchor
            radius = max(radius, np.linalg.norm(offset - np.dot(offset, axis) * axis) + m.geom_rbound[g])
        return radius

    def grid(joint):
        low, high = m.jnt_range[joint]
        return np.linspace(low, high, args.samples), (high - low) / (args.samples - 1)

    def min_distance(a, b):
        best = np.inf
        for g1 in scene.geoms(a):
            for g2 in scene.geoms(b):
                best = min(best, mujoco.mj_geomDistance(m, d, g1, g2, 1.0, None))
        return best

    def swept_distance(a, b):
        """Lower bound on the distance between bodies a and b over their joints' ranges."""
        moving = [(body, single[body]) for body in (a, b) if body in single]
        axes = [grid(joint) for _, joint in moving]
        slack = sum(arm(body, joint) * step / 2 for (body, joint), (_, step) in zip(moving, axes))
        best = np.inf
        for values in itertools.product(*[points for points, _ in axes]):
            scene.reset()
            for (_, joint), value in zip(moving, values):
                d.qpos[m.jnt_qposadr[joint]] = value
            mujoco.mj_kinematics(m, d)
            best = min(best, min_distance(a, b))
        scene.reset()
        return best - slack

    # Rule 3 ingredients: the shoulder and each robot body's reach from it.
    scene.reset()
    shoulder_joint = [j for j in range(m.njnt) if mujoco.mj_id2name(m, mujoco.mjtObj.mjOBJ_JOINT, j) ==
                      "robot:panda0_joint2"][0]
    shoulder = d.xanchor[shoulder_joint].copy()
    shoulder_body = m.jnt_bodyid[shoulder_joint]

    def reach(body):
        chain, b = 0.0, body
        while b != shoulder_body and b != 0:
            chain += np.linalg.norm(m.body_pos[b])
            b = m.body_parentid[b]
        if b == 0:  # above the shoulder (link1): measure its geoms directly
            return max(np.linalg.norm(d.geom_xpos[g] - shoulder) + m.geom_rbound[g] for g in scene.geoms(body))
        chain += np.linalg.norm(d.xpos[shoulder_body] - shoulder)
        return chain + max(np.linalg.norm(m.geom_pos[g]) + m.geom_rbound[g] for g in scene.geoms(body))

    def point_distance(point, g):
        center, frame = d.geom_xpos[g], d.geom_xmat[g].reshape(3, 3)
        if m.geom_type[g] == mujoco.mjtGeom.mjGEOM_BOX:
            local = frame.T @ (point - center)
            return np.linalg.norm(np.maximum(np.abs(local) - m.geom_size[g], 0))
        if m.geom_type[g] == mujoco.mjtGeom.mjGEOM_PLANE:
            return abs(np.dot(point - center, frame[:, 2]))
        return max(0.0, np.linalg.norm(point - center) - m.geom_rbound[g])

    def shoulder_distance(body):
        """Lower bound on the distance from the shoulder to the body's geoms over its joint's range."""
        if body not in single:
            return min(point_distance(shoulder, g) for g in scene.geoms(body))
        joint = single[body]
        points, step = grid(joint)
        best = np.inf
        for value in points:
            scene.reset()
            d.qpos[m.jnt_qposadr[joint]] = value
            mujoco.mj_kinematics(m, d)
            best = min(best, min(point_distance(shoulder, g) for g in scene.geoms(body)))
        scene.reset()
        return best - arm(body, joint) * step / 2

    def label(body):
        return scene.name(body) or ("world" if body == 0 else None)

    def compatible(a, b):
        return any((m.geom_contype[g1] & m.geom_conaffinity[g2]) or (m.geom_contype[g2] & m.geom_conaffinity[g1])
                   for g1 in scene.geoms(a) for g2 in scene.geoms(b))

    groups = {"filtered": [], "static": [], "swept": [], "reach": []}
    for a, b in itertools.combinations(bodies, 2):
        if label(a) is None or label(b) is None:
            continue  # <exclude> needs names
        if not compatible(a, b):
            groups["filtered"].append((a, b, None))
            continue
        if a in static and b in static:
            groups["static"].append((a, b, None))
            continue
        fixed_or_single = all(x in static or x in single for x in (a, b))
        if fixed_or_single and not (a in robot and b in robot):
            distance = swept_distance(a, b)
            if distance > clearance:
                groups["swept"].append((a, b, distance))
                continue
        robots = [x for x in (a, b) if x in robot]
        if len(robots) == 1:
            other = b if robots[0] == a else a
            if other in static or other in single:
                distance = shoulder_distance(other) - reach(robots[0])
                if distance > clearance:
                    groups["reach"].append((a, b, distance))

    print(f"# {sum(len(v) for v in groups.values())} body pairs that can never touch "
          f"(tools/kitchen_contact_exclusions.py, clearance {args.clearance} m beyond margins)")
    print("    exclude:")
    notes = {"filtered": "contype and conaffinity never match", "static": "both welded to the world", "swept": "single-joint parts, swept over their ranges",
             "reach": "beyond the robot body's reach from the shoulder"}
    for rule, pairs in groups.items():
        print(f"      # {rule}: {notes[rule]} ({len(pairs)})")
        for a, b, distance in pairs:
            gap = "" if distance is None else f"  # {distance:.3f} m"
            print(f"      - [{label(a)}, {label(b)}]{gap}")


if __name__ == "__main__":
    main()
