#!/usr/bin/env python3
"""Derive the 9 block keypoints of Diffusion Policy's low-dim Push-T observation (the numbers in tasks/pusht/task.yaml).

Diffusion Policy (PymunkKeypointManager.create_from_pusht_env, n_block_kps=9, seed=0) renders the T at (256, 300),
angle 0, with pygame, takes the pixels that are not white, maps them to the block frame, picks 9 of them by farthest
point sampling from a random start, and adds a uniform [0, 1) shift. This script repeats that procedure with the
pymunk and pygame drawing of gym-pusht (pip install gym-pusht==0.1.8) and prints the keypoints as YAML.
"""
import numpy as np
import pygame
import pymunk
from gym_pusht.envs.pusht import PushTEnv
from gym_pusht.envs.pymunk_override import DrawOptions


def farthest_point_sampling(points, count, first):
    chosen = [points[first]]
    for _ in range(count - 1):
        distances = np.linalg.norm(points[:, None, :] - np.array(chosen)[None, :, :], axis=-1).min(axis=1)
        chosen.append(points[np.argmax(distances)])
    return np.array(chosen)


def main():
    rng = np.random.default_rng(seed=0)
    space = pymunk.Space()
    block, _ = PushTEnv.add_tee(space, (256, 300), 0)
    screen = pygame.Surface((512, 512))
    screen.fill(pygame.Color("white"))
    space.debug_draw(DrawOptions(screen))
    image = np.uint8(pygame.surfarray.array3d(screen).transpose(1, 0, 2))
    mask = (image != np.array([255, 255, 255], dtype=np.uint8)).any(axis=-1)
    xy = np.moveaxis(np.array(np.indices((512, 512))), 0, -1)[:, :, ::-1].astype(np.float64)
    # Block frame: the inverse of translation (256, 300) and rotation 0.
    local = xy - np.array(block.position)
    points = local[mask]
    first = rng.choice(len(points))
    keypoints = farthest_point_sampling(points, 9, first)
    keypoints = keypoints + rng.uniform(0, 1, size=keypoints.shape)
    print("keypoints:")
    for x, y in keypoints:
        print(f"  - [{x:.6f}, {y:.6f}]")


if __name__ == "__main__":
    main()
