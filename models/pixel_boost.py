"""Pixel boost: a swapper run on a face crop t times its size (t = 2, 3 or 4), split polyphase.

A swapper sees a face at the one size it was trained on (S: 128 or 256 px), so a face bigger
than that in the frame comes back with only S px of detail. Boosted, the face is warped
straight to S*t px (the family's own template, at that size) and the crop is split polyphase
(space-to-depth), not into tiles: sub-image `i*t + j` is `crop[i::t, j::t]`, every t-th pixel
from (i, j), so each of the t*t sub-images is a whole face at S px, shifted by a sub-pixel
offset: what the model was trained on (a tile would be a quarter face it has never seen). The
swapped sub-images interleave back, by the exact inverse, into one swapped S*t crop, which
the paste-back takes like any other (its matrix is the S*t crop's). A face costs t*t model
items: a 128 px model gives 256-512 px, a 256 px one 512-1024 px.

Whatever each job's factor, the sub-images of all jobs go to the model in one batch (each
beside its own job's identity): `split_jobs`, `job_identities`, then `merge_jobs` on the
model's decoded output. The families (models/swap_models.py, models/inswapper.py) differ only
in how they cut a crop and code the model's input and output.
"""
from __future__ import annotations

from typing import Callable, Sequence

import numpy as np

from .face import SwapJob
from .host import HostPool

# Cuts a face: (frame, its five keypoints, the crop's side) -> (crop, the matrix that cut it).
Cut = Callable[[np.ndarray, np.ndarray, int], tuple[np.ndarray, np.ndarray]]


DEFAULT = "1x"  # protocol/options.py's `pixel_boost` default (a test holds them together)


def factor(choice: str) -> int:
    """The factor of a `pixel_boost` option's value: "2x" -> 2."""
    return int(choice.removesuffix("x"))


def split(crops: np.ndarray, t: int) -> np.ndarray:
    """(N, S*t, S*t, ...) crops -> their (N*t*t, S, S, ...) sub-images: crop n's sub-image
    `i*t + j`, at `n*t*t + i*t + j`, is `crops[n, i::t, j::t]`. One reshape and transpose
    (space-to-depth), whatever the dtype and trailing axes."""
    count, side = crops.shape[:2]
    if crops.shape[2] != side or side % t:
        raise ValueError(f"crops of {crops.shape[1:3]} px do not split into {t} x {t} equal sub-images")
    size, rest = side // t, crops.shape[3:]
    trailing = tuple(range(5, 5 + len(rest)))
    return (crops.reshape(count, size, t, size, t, *rest).transpose(0, 2, 4, 1, 3, *trailing)
            .reshape(count * t * t, size, size, *rest))


def merge(subimages: np.ndarray, t: int) -> np.ndarray:
    """The exact inverse of `split`: (N*t*t, S, S, ...) sub-images -> (N, S*t, S*t, ...) crops."""
    items, size = subimages.shape[:2]
    if items % (t * t):
        raise ValueError(f"{items} sub-images are not whole crops of {t} x {t}")
    count, rest = items // (t * t), subimages.shape[3:]
    trailing = tuple(range(5, 5 + len(rest)))
    return (subimages.reshape(count, t, t, size, size, *rest).transpose(0, 3, 1, 4, 2, *trailing)
            .reshape(count, size * t, size * t, *rest))


def split_jobs(host: HostPool, frames: Sequence[np.ndarray], jobs: Sequence[SwapJob], size: int,
               cut: Cut) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """Every job's face cut at `size` x its boost and split: the sub-images of all jobs in job
    order (job k's boost**2 in a row), and each job's matrix (of its whole crop)."""
    def one(job: SwapJob) -> tuple[np.ndarray, np.ndarray]:
        crop, matrix = cut(frames[job.frame_index], job.face.kps, size * job.boost)
        return split(crop[None], job.boost), matrix

    made = host.map("swap_pre", one, jobs)
    return [subimage for subimages, _ in made for subimage in subimages], [matrix for _, matrix in made]


def job_identities(jobs: Sequence[SwapJob]) -> np.ndarray:
    """Each job's identity once per sub-image of it: the `source` input beside `split_jobs`'."""
    identities = np.stack([job.identity for job in jobs]).astype(np.float32)
    return np.repeat(identities, [job.boost ** 2 for job in jobs], axis=0)


def merge_jobs(host: HostPool, swapped: np.ndarray, jobs: Sequence[SwapJob]) -> list[np.ndarray]:
    """The swapped sub-images (in `split_jobs`' order) merged back: one crop per job, its side
    the model's size x the job's boost."""
    ends = np.cumsum([job.boost ** 2 for job in jobs])

    def one(index: int) -> np.ndarray:
        boost = jobs[index].boost
        return merge(swapped[ends[index] - boost ** 2:ends[index]], boost)[0]

    return host.map("swap_post", one, range(len(jobs)))
