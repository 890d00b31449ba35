"""The episode videos an evaluation lists (`videos`: [{seed, success, file}], written by `flowpolicy eval --video`),
read and embedded in the page as data URLs: failures first, since they are what one wants to watch."""

from __future__ import annotations

import base64
from dataclasses import dataclass

MEDIA_TYPES = {".mp4": "video/mp4", ".webm": "video/webm", ".ogv": "video/ogg"}


@dataclass
class EmbeddedVideo:
    evaluation: str  # its label
    source: str  # the report that lists it
    seed: int
    success: bool
    caption: str
    data_url: str
    size: int  # bytes of the file


def _progress_text(evaluation, seed):
    for result in evaluation.results:
        if int(result["seed"]) == seed and isinstance(result.get("maxProgress"), (int, float)):
            return f", {evaluation.progress_name} {result['maxProgress']:.3g}"
    return ""


def collect_videos(evaluations, limit):
    """(videos to embed, notes): at most `limit` videos, failures first, then by report and seed; a listed file that
    is missing or of an unknown type becomes a note, not an error (the report is still worth showing)."""
    listed = [(not video.success, index, video.seed, evaluation, video)
              for index, evaluation in enumerate(evaluations) for video in evaluation.videos]
    listed.sort(key=lambda entry: (not entry[0], entry[1], entry[2]))
    embedded, notes, skipped = [], [], 0
    for _, _, _, evaluation, video in listed:
        media_type = MEDIA_TYPES.get(video.path.suffix.lower())
        if media_type is None:
            notes.append(f"{evaluation.source}: video {video.path} is not an MP4 or WebM file; left out.")
            continue
        if len(embedded) >= limit:
            skipped += 1
            continue
        try:
            data = video.path.read_bytes()
        except OSError as error:
            notes.append(f"{evaluation.source}: video {video.path} cannot be read ({error.strerror or error}); "
                         "left out.")
            continue
        outcome = "success" if video.success else "failure"
        embedded.append(EmbeddedVideo(
            evaluation=evaluation.label, source=evaluation.source, seed=video.seed, success=video.success,
            caption=f"{evaluation.label}: seed {video.seed}, {outcome}{_progress_text(evaluation, video.seed)}",
            data_url=f"data:{media_type};base64,{base64.b64encode(data).decode('ascii')}", size=len(data)))
    if skipped:
        notes.append(f"{skipped} more video(s) listed in the reports were not embedded (--max-videos {limit}).")
    return embedded, notes
