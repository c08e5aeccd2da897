"""Video: read and write video files, optical flow, warping and reliability masks (names imported lazily).

Needs the ``video`` extra (PyAV and OpenCV). Conventions and measurements: docs/dev/video.md. The warping
function is ``percept.video.warp.warp`` (``percept.video.warp`` is its module; ``warp_tensor`` is exported here).
"""

from ..lazy import exports

_EXPORTS = {"VideoInfo": "io", "probe": "io", "read_frames": "io", "write_video": "io",
            "compute_flow": "flow", "FlowCache": "flow",
            "warp_tensor": "warp", "consistency_mask": "warp", "is_scene_cut": "warp",
            "reliable_share": "warp", "temporal_error": "warp"}
__all__ = sorted(_EXPORTS)


__getattr__ = exports(__name__, _EXPORTS)
