"""Motion stage: has anything moved in the region of interest since the detector last looked?

The test runs on a small grey copy of the region (long side ``PROBE_SIDE`` pixels, area
averaged, which also averages sensor noise away) and compares it with the copy kept from the
last frame the detector ran on, not with the previous frame: a vehicle creeping a fraction of
a pixel per frame still adds up to a change before it has gone far. Only the copy's pixels are
compared; the copy lives in memory like the frame and is never written anywhere.

A test costs well under a millisecond (a 640x360 region: about 0.1 ms), against about 20 ms
for a detection. It errs one way only: anything it is unsure of reads as motion.
"""

from __future__ import annotations

import cv2
import numpy as np
import numpy.typing as npt

from detector.currency import FloatArray
from detector.detect import Region

Grey = npt.NDArray[np.uint8]

PROBE_SIDE = 160
"""Long side of the grey copy, at most half the region's: every copy pixel averages two by
two frame pixels or more, which halves sensor noise. A 160x120 camera is compared at 80x60,
a 1280x720 one at 160x90, where a distant car of 10x6 pixels still covers a copy pixel."""
CHANGE_LEVELS = 12
"""A copy pixel has changed when its grey level moved by more than this (of 255): well above
what area-averaged sensor and compression noise reach, well below a vehicle's contrast."""
CHANGED_PIXELS = 1
"""This many changed copy pixels are motion: the most sensitive setting there is."""
TRACK_MARGIN = 0.5
"""Changes within half a box size around a tracked vehicle are that vehicle's own motion
(and its shadow) when the question is whether something *else* moves; the same margin
around a vehicle whose motion is not known yet is watched."""


class MotionProbe:
    """Compares each frame it is shown with the one the detector last saw.

    A disabled probe looks at nothing and so reports motion always: its users then behave
    as if it were not there.
    """

    def __init__(self, region: Region, enabled: bool = True) -> None:
        self.region = region
        self.enabled = enabled
        self.scale = min(0.5, PROBE_SIDE / max(region.width, region.height))
        self.size = (
            max(1, round(region.width * self.scale)),
            max(1, round(region.height * self.scale)),
        )
        self._current: Grey | None = None
        self._reference: Grey | None = None

    def look(self, image: npt.NDArray[np.uint8]) -> None:
        """Take the small grey copy of a BGR frame's region (replacing the last one taken)."""
        if not self.enabled:
            return
        r = self.region
        small = cv2.resize(image[r.y1 : r.y2, r.x1 : r.x2], self.size, interpolation=cv2.INTER_AREA)
        self._current = cv2.cvtColor(small, cv2.COLOR_BGR2GRAY)

    def remember(self) -> None:
        """The detector ran on the frame looked at last: compare later frames with it."""
        self._reference, self._current = self._current, None

    def moved(
        self, ignore_boxes: FloatArray | None = None, watch_boxes: FloatArray | None = None
    ) -> bool:
        """Whether the frame looked at last differs from the remembered one (always, when
        either is missing).

        ``ignore_boxes`` (frame pixels, x1 y1 x2 y2) leaves out the neighbourhood of vehicles
        whose motion is known, to ask whether anything else moves; the neighbourhood of
        ``watch_boxes`` is never left out.
        """
        current, reference = self._current, self._reference
        if current is None or reference is None:
            return True
        changed = cv2.absdiff(current, reference) > CHANGE_LEVELS
        if ignore_boxes is not None and len(ignore_boxes):
            left_out = self._box_mask(ignore_boxes)
            if watch_boxes is not None and len(watch_boxes):
                left_out &= ~self._box_mask(watch_boxes)
            changed &= ~left_out
        return int(np.count_nonzero(changed)) >= CHANGED_PIXELS

    def _box_mask(self, boxes: FloatArray) -> npt.NDArray[np.bool_]:
        """Copy pixels within ``TRACK_MARGIN`` of any box (one pixel more for rounding)."""
        mask = np.zeros((self.size[1], self.size[0]), np.bool_)
        r = self.region
        for x1, y1, x2, y2 in boxes.tolist():
            grow_x, grow_y = TRACK_MARGIN * (x2 - x1), TRACK_MARGIN * (y2 - y1)
            left = max(0, int((x1 - grow_x - r.x1) * self.scale) - 1)
            top = max(0, int((y1 - grow_y - r.y1) * self.scale) - 1)
            right = int(np.ceil((x2 + grow_x - r.x1) * self.scale)) + 1
            bottom = int(np.ceil((y2 + grow_y - r.y1) * self.scale)) + 1
            mask[top:bottom, left:right] = True
        return mask
